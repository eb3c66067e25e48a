"""scripts/ci-build.sh, the logic of action.yml, run for real against the test registry: it
pushes the image and prints the digest `skopeo inspect` shows; a stale lock fails it with 3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Project

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
SPEC = """
[image]
name = "sandbox-test/ci"
registry = "{registry}"
workdir = "{workdir}"

[base]
image = "{base}"
"""


def _ci_build(project: Project, outputs: Path) -> subprocess.CompletedProcess[str]:
    """The script as a CI job runs it: in the repository's folder, no spec named."""
    env = {
        **os.environ,
        "SANDBOX_COMMAND": f"{sys.executable} -m builder",
        "PYTHONPATH": str(REPO),
        "SANDBOX_CACHE_DIR": str(project.cache),
        "GITHUB_OUTPUT": str(outputs),
    }
    env.pop("SANDBOX_FILE", None)
    return subprocess.run(
        [str(REPO / "scripts" / "ci-build.sh")],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


def test_the_ci_script_pushes_and_prints_the_digest_and_a_stale_lock_fails_it(
    project: Project, base_image: str, registry: str, tmp_path: Path
) -> None:
    project.write(SPEC.format(registry=registry, base=base_image, workdir="/workspace"))
    project.ok("lock")
    outputs = tmp_path / "github-output"

    done = _ci_build(project, outputs)

    assert done.returncode == 0, done.stderr
    printed = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert set(printed) == {"digest", "ref", "image-id", "overlay"}
    assert printed["ref"] == f"{registry}/sandbox-test/ci@{printed['digest']}"
    inspected = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{registry}/sandbox-test/ci:latest"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(inspected.stdout)["Digest"] == printed["digest"]
    overlay = json.loads(Path(printed["overlay"]).read_text())
    assert overlay["codex"]["sandbox"]["image"] == printed["ref"]
    assert outputs.read_text() == done.stdout

    project.write(SPEC.format(registry=registry, base=base_image, workdir="/srv"))
    stale = _ci_build(project, tmp_path / "stale-output")

    assert stale.returncode == 3, stale.stderr
    assert "sandbox.lock is stale" in stale.stderr
    assert stale.stdout == ""
    assert not (tmp_path / "stale-output").exists()
