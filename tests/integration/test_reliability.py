"""Interrupted and concurrent builds never leave a half-written cache, lock or overlay."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Project

pytestmark = pytest.mark.docker

SPEC = """
[image]
name = "sandbox-test/killed"

[base]
bootstrap = { suite = "bookworm" }

[system]
packages = ["jq", "less"]
"""


def _start_build(project: Project, cache: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "builder", "-f", str(project.spec), "build", "--json"],
        # Each cache gets its own user-wide store: a node one trial built must not be found
        # there by the next trial, which has to build (and be killed) again.
        env={**os.environ, "SANDBOX_CACHE_DIR": str(cache), "SANDBOX_STORE_DIR": f"{cache}-store"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _assert_cache_whole(cache: Path) -> None:
    """Every entry names layers that exist, and every layer's bytes match its name."""
    for layer in (cache / "layers").glob("*.tar"):
        digest = hashlib.sha256(layer.read_bytes()).hexdigest()
        assert layer.name == f"{digest}.tar", f"partial layer {layer}"
    for entry in (cache / "nodes").glob("*.json"):
        data = json.loads(entry.read_text())  # a torn write would not parse
        for layer in data["layers"]:
            assert (cache / "layers" / f"{layer['diff_id'][7:]}.tar").exists()


def test_kill_9_at_random_points_leaves_a_whole_cache(
    project: Project, base_image: str, tmp_path: Path
) -> None:
    project.write(SPEC)
    project.ok("lock")
    seeded = random.Random(20261122)
    for trial in range(10):
        cache = tmp_path / f"cache-{trial}"
        # The base comes from the shared cache (hard links: cheap); system must build.
        shutil.copytree(project.cache, cache, copy_function=os.link, dirs_exist_ok=True)
        build = _start_build(project, cache)
        time.sleep(seeded.uniform(0.2, 20.0))
        build.send_signal(signal.SIGKILL)
        build.communicate()
        _assert_cache_whole(cache)
        assert not (cache / "overlay.json.tmp").exists()
        if trial % 4 == 3:  # the next build after a kill must succeed
            finished = _start_build(project, cache)
            out, err = finished.communicate(timeout=900)
            assert finished.returncode == 0, err.decode()
            statuses = {n["status"] for n in json.loads(out)["nodes"]}
            assert statuses <= {"cached", "built"}
            _assert_cache_whole(cache)
            assert json.loads((cache / "overlay.json").read_text())["codex"]["sandbox"]["image"]


def test_two_builds_of_one_project_at_once_both_succeed(
    project: Project, base_image: str, tmp_path: Path
) -> None:
    project.write(SPEC.replace('"jq", "less"', '"jq", "file"'))
    project.ok("lock")
    cache = tmp_path / "cache"
    shutil.copytree(project.cache, cache, copy_function=os.link, dirs_exist_ok=True)
    first, second = _start_build(project, cache), _start_build(project, cache)
    results = [p.communicate(timeout=900) for p in (first, second)]
    assert first.returncode == 0, results[0][1].decode()
    assert second.returncode == 0, results[1][1].decode()
    ids = {json.loads(out)["image"]["id"] for out, _ in results}
    assert len(ids) == 1
    _assert_cache_whole(cache)
