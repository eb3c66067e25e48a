"""The same lock gives the same image, bit for bit, on another machine (issue 4).

"Another machine" is a second, clean Docker daemon with its own data root and an empty cache
dir: nothing is shared with the first build but sandbox.lock.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import Project

pytestmark = pytest.mark.docker

SPEC = """
[image]
name = "sandbox-test/reproducible"

[base]
bootstrap = { suite = "bookworm" }

[system]
packages = ["git", "jq"]

[tools]
pip = ["poetry", "ruff", "mypy"]
"""


def _layers(result: dict[str, Any]) -> dict[str, str]:
    return {n["name"]: n["layer"] for n in result["nodes"]}


def test_two_clean_daemons_build_the_same_image_id(
    project: Project, base_image: str, second_engine: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    project.write(SPEC)
    project.ok("lock")
    first = json.loads(project.ok("build", "--json").out)

    elsewhere = Project(root=project.root, cache=tmp_path_factory.mktemp("cache-elsewhere"))
    store = str(tmp_path_factory.mktemp("store-elsewhere"))  # nor its user-wide node store
    run = elsewhere.sandbox(
        "build", "--json", env={"DOCKER_HOST": second_engine, "SANDBOX_STORE_DIR": store}
    )
    assert run.code == 0, run.err
    second = json.loads(run.out)
    assert all(n["status"] == "built" for n in second["nodes"]), "the second cache was not empty"
    assert _layers(second) == _layers(first), "some layer differs between the two machines"
    assert second["image"]["id"] == first["image"]["id"]
