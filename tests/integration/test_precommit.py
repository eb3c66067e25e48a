"""The pre-commit hook of .pre-commit-hooks.yaml, run by the real `pre-commit try-repo` on a
temporary repository: it fails while sandbox.lock is stale and passes after `sandbox lock`.

pre-commit installs this checkout (uncommitted changes included, through its shadow commit)
into a venv of its own, as it would from a `rev:` of a user's config. The first `sandbox lock`
resolves a debootstrap base (the engine); the one after the edit keeps those pins.
"""

from __future__ import annotations

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
name = "sandbox-test/precommit"
workdir = "{workdir}"

[base]
bootstrap = {{ suite = "bookworm" }}
"""


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def _try_repo(root: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(home),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), "sandbox-lock-check"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_the_hook_fails_on_a_stale_lock_and_passes_after_sandbox_lock(
    project: Project, tmp_path: Path
) -> None:
    _git(project.root, "init", "-q")
    project.write(SPEC.format(workdir="/workspace"))
    project.ok("lock")
    project.write(SPEC.format(workdir="/srv"))  # changes spec_hash: the lock is stale
    _git(project.root, "add", "sandbox.toml", "sandbox.lock")

    stale = _try_repo(project.root, tmp_path / "pre-commit")

    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "sandbox.lock matches sandbox.toml" in stale.stdout
    assert "- exit code: 3" in stale.stdout
    assert "sandbox.lock is stale" in stale.stdout

    project.ok("lock")
    _git(project.root, "add", "sandbox.lock")
    fresh = _try_repo(project.root, tmp_path / "pre-commit")

    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "sandbox.lock matches sandbox.toml" in fresh.stdout
    assert "Passed" in fresh.stdout
