"""After a bump: status and build --explain name what changed; gc drops what it replaced."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from builder.store.cache import Cache
from tests.integration.conftest import Project

pytestmark = pytest.mark.docker

SPEC = """
[image]
name = "sandbox-test/bumped"

[base]
bootstrap = {{ suite = "bookworm" }}

[tools]
pip = ["ruff=={ruff}"]
"""


def _build_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("  build ")]


def _pip_layers(project: Project, built: dict[str, Any]) -> set[str]:
    """Every layer of the build's tools.pip node (one per tool, and the links on top)."""
    key = {n["name"]: n["key"] for n in built["nodes"]}["tools.pip"]
    entry = Cache(project.cache).entry(key)
    assert entry is not None
    return {layer.diff_id for layer in entry.layers}


def test_a_bump_is_explained_and_gc_removes_the_old_layer_and_image(
    project: Project, base_image: str
) -> None:
    project.write(SPEC.format(ruff="0.6.8"))
    project.ok("lock")
    old = json.loads(project.ok("build", "--json").out)
    old_layers = _pip_layers(project, old)

    project.write(SPEC.format(ruff="0.6.9"))
    project.ok("lock")
    status = project.ok("status").out
    assert "ruff 0.6.8 -> 0.6.9" in status
    assert "tools.ruff.requirement: 'ruff==0.6.8' -> 'ruff==0.6.9'" in status
    assert [line.split()[1] for line in _build_lines(status)] == ["tools.pip"], status

    explained = project.sandbox("build", "--json", "--explain")
    assert explained.code == 0, explained.err
    assert "ruff 0.6.8 -> 0.6.9" in explained.err
    assert [line.split()[1] for line in _build_lines(explained.err)] == ["tools.pip"]
    new = json.loads(explained.out)
    assert {n["name"] for n in new["nodes"] if n["status"] == "built"} == {"tools.pip"}
    new_layers = {n["layer"] for n in new["nodes"]} | _pip_layers(project, new)
    replaced = old_layers - new_layers
    assert len(replaced) == 1, (old_layers, new_layers)  # ruff's venv; its links are the same

    done = project.ok("gc").out
    assert done.startswith("freed ")
    layers = {p.stem for p in (project.cache / "layers").glob("*.tar")}
    assert {d.removeprefix("sha256:") for d in replaced}.isdisjoint(layers)
    assert {d.removeprefix("sha256:") for d in new_layers} <= layers
    gone = subprocess.run(
        ["docker", "image", "inspect", old["image"]["id"]], capture_output=True, check=False
    )
    assert gone.returncode != 0, "gc kept the image of the old lock"
    again = json.loads(project.ok("build", "--json").out)
    assert {n["status"] for n in again["nodes"]} == {"cached"}
    assert again["image"]["id"] == new["image"]["id"]
