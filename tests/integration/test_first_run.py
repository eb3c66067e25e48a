"""A newcomer's first run: the README's main command, the starter, and the seeds' examples.

Everything here is what a new user types: `make demo` on this checkout, `sandbox init` then
lock/build/check, the Codex Cloud course's image (examples/codex-cloud: system libraries,
node, npm CLIs and a Python data stack from a plain requirements.txt), and a pinned
requirements.txt without hashes. Each image is run as uid 12345, as an orchestrator would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from tests.integration.conftest import Project, docker

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
AS_AGENT = ("run", "--rm", "--user", "12345:12345", "-e", "HOME=/tmp")


def _pins(project: Project, node: str) -> dict[str, str]:
    lock = tomllib.loads(project.lock.read_text())
    [platform] = lock["platforms"].values()
    return {p["name"]: p["version"] for p in platform["nodes"][node]["inputs"]["pins"]}


def test_the_readmes_main_command_exits_0(shared_cache: Path) -> None:
    """`make demo` (README, first command) locks, builds and checks this repo's sandbox.toml."""
    done = subprocess.run(
        ["make", "-C", str(REPO), "demo"],
        capture_output=True,
        text=True,
        env={**os.environ, "SANDBOX_CACHE_DIR": str(shared_cache)},
        check=False,
        timeout=1800,
    )
    output = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, f"make demo exited {done.returncode}:\n{output}"
    assert "checks passed" in done.stdout + done.stderr
    assert "FAIL" not in done.stdout


def test_the_starter_locks_builds_and_checks_as_it_is(project: Project) -> None:
    project.ok("init")
    project.ok("lock")
    project.ok("build")
    checked = project.ok("check")
    assert "checks passed" in checked.out + checked.err


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> tuple[Project, str]:
    """examples/codex-cloud, locked and built as a user would from a copy of the folder."""
    root = tmp_path_factory.mktemp("codex-cloud")
    shutil.copytree(REPO / "examples" / "codex-cloud", root, dirs_exist_ok=True)
    (root / "sandbox.lock").unlink(missing_ok=True)
    project = Project(root=root, cache=shared_cache)
    project.ok("lock")
    built = json.loads(project.ok("build", "--json").out)
    return project, str(built["image"]["id"])


def test_the_course_image_runs_its_programs_and_imports_its_libraries_as_any_uid(
    course: tuple[Project, str],
) -> None:
    project, image = course
    checked = json.loads(project.ok("check", "--json").out)
    results = {r["check"]: r for r in checked}
    for library in ("numpy", "pandas", "scikit-learn", "matplotlib"):
        assert results[f"deps.ds import {library}"]["ok"], results
    assert all(r["ok"] for r in checked), [r for r in checked if not r["ok"]]

    out = docker(
        *AS_AGENT,
        image,
        "sh",
        "-ec",
        "node --version; ncc --version; turbo --version; "
        "python3 -c 'import numpy, pandas, sklearn, matplotlib; print(\"stack\")'; "
        "convert -version | head -1; ffmpeg -hide_banner -version | head -1; "
        "pkg-config --modversion vips",
    )
    assert out.startswith("v22.")
    assert "\nstack\n" in out  # python3 imported the whole data stack
    assert "ImageMagick" in out
    assert "ffmpeg version" in out


def test_lock_update_of_one_library_moves_it_alone(course: tuple[Project, str]) -> None:
    project, _ = course
    before = _pins(project, "deps.ds")
    document: Any = tomlkit.parse(project.lock.read_text())
    [platform] = document["platforms"].values()
    for pin in platform["nodes"]["deps.ds"]["inputs"]["pins"]:
        if pin["name"] == "numpy":
            pin["version"] = "0.0.1"  # as if numpy were locked long ago
    project.lock.write_text(tomlkit.dumps(document))
    project.ok("lock", "--update", "numpy")

    after = _pins(project, "deps.ds")
    assert after["numpy"] == before["numpy"]
    assert {n: v for n, v in after.items() if n != "numpy"} == {
        n: v for n, v in before.items() if n != "numpy"
    }


def test_pinned_requirements_without_hashes_lock_with_hashes_and_install_exactly(
    project: Project,
) -> None:
    (project.root / "ds").mkdir()
    (project.root / "ds" / "requirements.txt").write_text("numpy==2.2.6\npandas==2.3.3\n")
    project.write(
        '[image]\nname = "sandbox-test/pinned-ds"\nuser = "agent"\n\n'
        '[base]\nbootstrap = { suite = "bookworm" }\n\n'
        '[deps.ds]\nmanager = "pip"\npath = "ds"\nmode = "install"\n'
    )
    project.ok("lock")
    pins = _pins(project, "deps.ds")
    assert pins["numpy"] == "2.2.6"
    assert pins["pandas"] == "2.3.3"
    assert {"python-dateutil", "pytz", "tzdata"} <= set(pins)  # the closure
    lock = tomllib.loads(project.lock.read_text())
    [platform] = lock["platforms"].values()
    assert all(len(p["sha256"]) == 64 for p in platform["nodes"]["deps.ds"]["inputs"]["pins"])

    image = json.loads(project.ok("build", "--json").out)["image"]["id"]
    listed = docker(*AS_AGENT, image, "python3", "-m", "pip", "list", "--format", "json")
    installed = {p["name"].lower(): p["version"] for p in json.loads(listed)}
    assert {n: installed.get(n) for n in pins} == pins
