"""The faults of real machines: a stalled network, a full disk, a registry dying mid-push, a
corrupt cache. Each test asserts the error a user reads, the exit code, that nothing was left
half-written, and that the next run, once the fault is gone, succeeds.

The stall bounds are made short through their settings (SANDBOX_NET_TIMEOUT,
SANDBOX_STEP_TIMEOUT), so each fault costs seconds.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Project, docker
from tests.integration.faults import Mirror
from tests.integration.test_reliability import _assert_cache_whole

pytestmark = pytest.mark.docker

FAST = {"SANDBOX_NET_TIMEOUT": "2"}


@pytest.fixture(scope="module")
def mirror() -> Iterator[Mirror]:
    served = Mirror()
    yield served
    served.close()


def _timed(project: Project, *args: str, env: dict[str, str]) -> tuple[float, int, str, str]:
    started = time.monotonic()
    run = project.sandbox(*args, env=env)
    return time.monotonic() - started, run.code, run.out, run.err


def _our_containers(folder: Path) -> list[str]:
    """Containers (any state) with a mount from under `folder`: a build's step containers."""
    ids = docker("ps", "-aq", "--filter", "label=sandbox-builder").split()
    if not ids:
        return []
    found = json.loads(docker("inspect", *ids, check=False) or "[]")
    return [
        c["Id"]
        for c in found
        if any(str(m.get("Source", "")).startswith(str(folder)) for m in c.get("Mounts", []))
    ]


def test_a_stalled_bootstrap_mirror_fails_lock_in_seconds_then_lock_succeeds(
    project: Project, mirror: Mirror
) -> None:
    project.write(
        f'[image]\nname = "sbx20/stall-boot"\n\n[base]\n'
        f'bootstrap = {{ suite = "bookworm", mirror = "{mirror.url}" }}\n'
    )
    mirror.stall()
    seconds, code, _, err = _timed(project, "lock", env=FAST)
    assert code == 4, err
    assert "debootstrap failed" in err
    assert "Read error (Connection timed out)" in err
    assert "waited up to 2s for an answer and was tried 3 times (SANDBOX_NET_TIMEOUT)" in err
    assert seconds < 60, f"the stall took {seconds:.0f}s to detect"
    assert not project.lock.exists(), "a failed lock wrote sandbox.lock"
    mirror.relay()
    seconds, code, _, err = _timed(project, "lock", env={})
    assert code == 0, err
    assert "resolved  base (debootstrap bookworm" in err


def test_a_stalled_apt_mirror_fails_the_system_step_then_the_rebuild_reuses_the_base(
    project: Project, mirror: Mirror, base_image: str, tmp_path: Path
) -> None:
    port = mirror.url.split(":")[-1].split("/")[0]
    derived = f"sbx20-stall-base:{port}"
    name = f"sbx20-stall-{port}"
    sources = f"deb {mirror.url} bookworm main"
    docker("run", "--name", name, "--user", "0", base_image, "sh", "-c",
           f"echo '{sources}' > /etc/apt/sources.list")  # fmt: skip
    downloads = tmp_path / "downloads"
    env = {"SANDBOX_DOWNLOAD_DIR": str(downloads), "SANDBOX_STORE_DIR": str(tmp_path / "store")}
    try:
        docker("commit", name, derived)
        project.write(
            f'[image]\nname = "sbx20/stall-apt"\nuser = "agent"\n\n[base]\nimage = "{derived}"\n'
            '\n[system]\npackages = ["jq"]\n'
        )
        mirror.relay()
        project.ok("lock")
        lock = project.lock.read_bytes()
        mirror.stall()
        seconds, code, _, err = _timed(project, "build", env={**env, **FAST})
        assert code == 5, err
        assert "apt-get update could not download the package lists from the mirror" in err
        assert "Each try waited 2s (SANDBOX_NET_TIMEOUT)" in err
        assert "full log: " in err and "system.log" in err
        assert seconds < 90, f"the stalled apt took {seconds:.0f}s to detect"
        stall_seconds = seconds

        # The per-step limit stops a step whatever its tools do.
        seconds, code, _, err = _timed(
            project,
            "build",
            env={**env, "SANDBOX_NET_TIMEOUT": "600", "SANDBOX_STEP_TIMEOUT": "5"},
        )
        assert code == 5, err
        assert "system: apt-get install was stopped after 5s without finishing" in err
        assert "(the step limit, SANDBOX_STEP_TIMEOUT=5)" in err
        assert f"Its log: {project.cache / 'logs' / 'system.log'}" in err
        assert seconds < 60
        assert _our_containers(downloads) == [], "a stopped step left its container"
        _assert_cache_whole(project.cache)
        assert project.lock.read_bytes() == lock

        mirror.relay()
        run = project.ok("build", "--json")
        statuses = {n["name"]: n["status"] for n in json.loads(run.out)["nodes"]}
        assert statuses == {"base": "cached", "system": "built"}
        print(f"stalled apt mirror detected in {stall_seconds:.1f}s")
    finally:
        docker("rm", "-f", name, check=False)
        docker("rmi", derived, check=False)
        subprocess.run(
            "docker images -q sbx20/stall-apt | sort -u | xargs -r docker rmi -f",
            shell=True,
            check=False,
            capture_output=True,
        )
