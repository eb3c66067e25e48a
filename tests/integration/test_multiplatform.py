"""One lock for linux/amd64 and linux/arm64, the arm64 image built here under QEMU (issue 22).

The spec is kept small because the arm64 steps run emulated (10-20x slower than native):
jq, Debian's python for a pure-Python pip tool, node from PyPI (a host step: no emulation)
and esbuild, whose binary comes from the optional `@esbuild/linux-arm64` package. The
registry is Debian's docker-registry; skopeo reads what reached it. "Another machine" is a
second, clean Docker daemon with an empty cache dir and no registry to pull nodes from: it
rebuilds both platforms from the lock while the first daemon builds them, so the two
emulated builds (each a debootstrap whose second stage runs under QEMU) share the wall clock
instead of adding up; meanwhile the first daemon also locks a spec whose `[base] image` is
the index it pushed and builds its arm64 image. A teammate is that second daemon again with
empty caches and the registry: it pulls every node of each platform and builds nothing.
"""

from __future__ import annotations

import json
import subprocess
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from string import Template
from typing import Any

import pytest

from tests.integration.conftest import Project, docker

pytestmark = pytest.mark.docker

# The spec bench/multiplatform.py times too; `registry` is a line of [image], or empty.
SPEC_TEMPLATE = Template(
    (Path(__file__).parents[1] / "fixtures/multiplatform/sandbox.toml.template").read_text()
)


def _spec(registry: str) -> str:
    return SPEC_TEMPLATE.substitute(name="sandbox-test/multiplatform", registry=registry)


IMAGE_BASE_SPEC = """
[image]
name = "sandbox-test/multiplatform-on-image"
platforms = ["linux/amd64", "linux/arm64"]

[base]
image = "{base}"

[system]
packages = ["tree"]
"""
TOOLS = "uname -m; jq --version; node --version; esbuild --version; pyflakes --version"


def _pins(lock: dict[str, Any], platform: str, node: str) -> dict[str, str]:
    packages = lock["platforms"][platform]["nodes"][node]["inputs"]["packages"]
    return {p["name"]: p["sha256"] for p in packages}


def _skopeo_raw(ref: str) -> dict[str, Any]:
    done = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"],
        capture_output=True,
        text=True,
        check=True,
    )
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def _build(project: Project, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    run = project.sandbox("build", "--json", *args, env=env)
    assert run.code == 0, f"sandbox build {' '.join(args)} exited {run.code}:\n{run.err}"
    result: dict[str, Any] = json.loads(run.out)
    result["stderr"] = run.err
    return result


def _timed(label: str, built: dict[str, Any], seconds: float) -> str:
    nodes = ", ".join(f"{n['name']} {n['status']} {n['seconds']:.0f} s" for n in built["nodes"])
    return f"{label}: {seconds:.0f} s ({nodes})"


def _elsewhere(
    lock: str, root: Path, env: dict[str, str], log: list[str]
) -> dict[str, dict[str, Any]]:
    """Both platforms built from `lock` alone on another daemon, emulated one first."""
    elsewhere = Project(root=root, cache=root / "cache")
    elsewhere.write(_spec(""))
    elsewhere.lock.write_text(lock)
    built = {}
    for platform in ("linux/arm64", "linux/amd64"):
        started = time.monotonic()
        built[platform] = _build(elsewhere, "--platform", platform, env=env)
        log.append(_timed(f"elsewhere {platform}", built[platform], time.monotonic() - started))
    return built


def test_both_platforms_lock_here_and_arm64_builds_under_emulation(
    project: Project,
    registry: str,
    second_engine: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    log: list[str] = []
    started = time.monotonic()
    project.write(_spec(f'registry = "{registry}"'))
    project.ok("lock")
    project.ok("lock", "--check")
    log.append(f"lock: {time.monotonic() - started:.0f} s")
    lock = tomllib.loads(project.lock.read_text())
    assert set(lock["platforms"]) == {"linux/amd64", "linux/arm64"}
    amd64, arm64 = (_pins(lock, p, "system") for p in ("linux/amd64", "linux/arm64"))
    assert amd64.keys() == arm64.keys(), "the same closure on both"
    assert amd64["jq"] != arm64["jq"], "each architecture pins its own .deb"
    assert "python3-venv" in arm64
    npm = lock["platforms"]["linux/arm64"]["nodes"]["tools.npm"]["inputs"]["packages"]
    assert any(p["path"] == "node_modules/@esbuild/linux-arm64" for p in npm)
    node = lock["platforms"]["linux/arm64"]["nodes"]["runtime.node"]["inputs"]
    assert "aarch64" in node["url"], "the runtime's own arm64 wheel"

    # Another machine, nothing shared but the lock (not even the registry's nodes), building
    # at the same time as this one.
    clean = {
        "DOCKER_HOST": second_engine,
        "SANDBOX_STORE_DIR": str(tmp_path_factory.mktemp("store-elsewhere")),
    }
    with ThreadPoolExecutor(max_workers=1) as pool:
        rebuilt = pool.submit(
            _elsewhere, project.lock.read_text(), tmp_path_factory.mktemp("elsewhere"), clean, log
        )
        started = time.monotonic()
        native = _build(project, "--push")
        log.append(_timed("here linux/amd64", native, time.monotonic() - started))
        assert "missing   linux/arm64 from the index" in native["stderr"]
        assert native["image"]["ref"].startswith(f"{registry}/sandbox-test/multiplatform@")

        started = time.monotonic()
        emulated = _build(project, "--platform", "linux/arm64", "--push")
        log.append(_timed("here linux/arm64", emulated, time.monotonic() - started))
        index = _skopeo_raw(f"{registry}/sandbox-test/multiplatform:latest")
        arm64_manifest = next(
            m for m in index["manifests"] if m["platform"]["architecture"] == "arm64"
        )
        # While the other daemon still builds: arm64 on an image base, the index just pushed.
        started = time.monotonic()
        on_image = _on_image_base(
            f"{registry}/sandbox-test/multiplatform",
            arm64_manifest["digest"],
            Project(root=tmp_path_factory.mktemp("on-image"), cache=project.cache),
        )
        log.append(
            _timed("image base linux/arm64 (lock, build)", on_image, time.monotonic() - started)
        )
        again = rebuilt.result()
    print("\n".join(log))  # the times docs/platforms.md reports (pytest -rP shows them)

    assert "sandbox-test/multiplatform:latest-arm64" in emulated["image"]["tags"]
    out = docker("run", "--rm", "--user", "12345", "--cap-drop", "ALL", emulated["image"]["id"],
                 "sh", "-c", TOOLS)  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == "aarch64"
    assert lines[1] == "jq-1.6"
    assert lines[2].startswith("v22.")
    assert lines[3] == "0.24.2"
    assert lines[4].startswith("3.2.0")

    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = {(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]}
    assert platforms == {("linux", "amd64"), ("linux", "arm64")}
    digest = emulated["image"]["ref"].split("@", 1)[1]
    overlay = json.loads((project.cache / "overlay.json").read_text())
    assert overlay["codex"]["sandbox"]["image"].endswith(f"@{digest}"), "the index is pinned"
    manifest = _skopeo_raw(f"{registry}/sandbox-test/multiplatform@{arm64_manifest['digest']}")
    assert manifest["config"]["digest"] == emulated["image"]["id"]

    for platform, first in (("linux/amd64", native), ("linux/arm64", emulated)):
        assert all(n["status"] == "built" for n in again[platform]["nodes"]), "cache was empty"
        assert again[platform]["image"]["id"] == first["image"]["id"], f"{platform} differs"

    # A teammate on either architecture: empty caches, the registry in the spec. Each platform
    # pulls every node and builds nothing; its image is the one built here.
    for platform, first in (("linux/arm64", emulated), ("linux/amd64", native)):
        arch = platform.split("/")[1]
        teammate = Project(root=project.root, cache=tmp_path_factory.mktemp(f"teammate-{arch}"))
        store = {**clean, "SANDBOX_STORE_DIR": str(tmp_path_factory.mktemp(f"store-{arch}"))}
        theirs = _build(teammate, "--platform", platform, env=store)
        assert {n["status"] for n in theirs["nodes"]} == {"pulled"}, theirs["nodes"]
        assert theirs["image"]["id"] == first["image"]["id"]
    machine = docker("-H", second_engine, "run", "--rm", emulated["image"]["id"], "uname", "-m")
    assert machine == "aarch64"

    assert [n["status"] for n in on_image["nodes"]] == ["built", "built"]
    out = docker("run", "--rm", on_image["image"]["id"], "sh", "-c",
                 "uname -m; jq --version; tree --version")  # fmt: skip
    assert out.splitlines()[:2] == ["aarch64", "jq-1.6"]
    assert out.splitlines()[2].startswith("tree v2.1.0")


def _on_image_base(repo: str, arm64_digest: str, on_image: Project) -> dict[str, Any]:
    """Lock both platforms on the image index `repo`:latest and build arm64 on it.

    Each platform is pinned to its own manifest in the index (read from the registry), and
    arm64's system packages are resolved against what arm64's image has (read by one
    emulated probe at lock).
    """
    on_image.write(IMAGE_BASE_SPEC.format(base=f"{repo}:latest"))
    on_image.ok("lock")
    locked = tomllib.loads(on_image.lock.read_text())["platforms"]
    base = locked["linux/arm64"]["nodes"]["base"]["inputs"]
    assert base["pinned"] == f"{repo}@{arm64_digest}"
    assert any(p["name"] == "jq" for p in base["packages"]), "read from arm64's image"
    tree = {p["name"]: p for p in locked["linux/arm64"]["nodes"]["system"]["inputs"]["packages"]}
    amd64_tree = locked["linux/amd64"]["nodes"]["system"]["inputs"]["packages"]
    assert set(tree) == {"tree"}, "jq and the rest come with the base"
    assert tree["tree"]["sha256"] != next(p["sha256"] for p in amd64_tree if p["name"] == "tree")
    return _build(on_image, "--platform", "linux/arm64")
