"""The same lock gives the same image, bit for bit, on another machine (issue 4).

"Another machine" is a second, clean Docker daemon with its own data root and an empty cache
dir: nothing is shared with the first build but sandbox.lock and a copy of the .deb files the
first one downloaded (as a warm apt cache, or CI's restored downloads, would hold). So the first
installs the system layer by pins from the mirror, and the second from the cached .debs
(kinds/system.from_cached_debs): the two ways must give the same layer.
"""

from __future__ import annotations

import json
import shutil
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


def _system_log(project: Project) -> str:
    return (project.cache / "logs" / "system.log").read_text()


def _layers(result: dict[str, Any]) -> dict[str, str]:
    return {n["name"]: n["layer"] for n in result["nodes"]}


def test_two_clean_daemons_build_the_same_image_id(
    project: Project, base_image: str, second_engine: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    project.write(SPEC)
    project.ok("lock")
    # The first machine too starts empty: the session's shared cache and the user-wide store
    # may hold this system node already (another test's), and then nothing would be built.
    here = Project(root=project.root, cache=tmp_path_factory.mktemp("cache-here"))
    downloads = tmp_path_factory.mktemp("downloads")
    env = {
        "SANDBOX_DOWNLOAD_DIR": str(downloads),
        "SANDBOX_STORE_DIR": str(tmp_path_factory.mktemp("store-here")),
    }
    run = here.sandbox("build", "--json", env=env)
    assert run.code == 0, run.err
    first = json.loads(run.out)
    assert all(n["status"] == "built" for n in first["nodes"] if n["name"] != "base")
    assert "locked .deb files from the download cache" not in _system_log(here)

    elsewhere = Project(root=project.root, cache=tmp_path_factory.mktemp("cache-elsewhere"))
    store = str(tmp_path_factory.mktemp("store-elsewhere"))  # nor its user-wide node store
    debs = tmp_path_factory.mktemp("downloads-elsewhere")
    shutil.copytree(downloads / "apt" / "archives", debs / "apt" / "archives")
    env = {"DOCKER_HOST": second_engine, "SANDBOX_STORE_DIR": store}
    run = elsewhere.sandbox("build", "--json", env={**env, "SANDBOX_DOWNLOAD_DIR": str(debs)})
    assert run.code == 0, run.err
    assert "locked .deb files from the download cache" in _system_log(elsewhere)
    second = json.loads(run.out)
    assert all(n["status"] == "built" for n in second["nodes"]), "the second cache was not empty"
    assert _layers(second) == _layers(first), "some layer differs between the two machines"
    assert second["image"]["id"] == first["image"]["id"]
