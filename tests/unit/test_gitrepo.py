"""The repository a spec lives in (builder/core/gitrepo.py), read from real git repositories:
HEAD's commit and the origin remote as a link, or less when there is less, never an error."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from builder.core.gitrepo import GitOrigin, origin, web_url


def _git(folder: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True, env=env
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "sub").mkdir(parents=True)
    _git(root, "init", "-q")
    (root / "sub" / "sandbox.toml").write_text("")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "first")
    return root


def test_a_spec_in_a_repository_names_its_commit_and_remote(repo: Path) -> None:
    _git(repo, "remote", "add", "origin", "git@github.com:acme/sandbox.git")

    found = origin(repo / "sub")

    assert found == GitOrigin(
        revision=_git(repo, "rev-parse", "HEAD"), source="https://github.com/acme/sandbox"
    )


def test_without_a_remote_only_the_commit_is_known(repo: Path) -> None:
    assert origin(repo) == GitOrigin(revision=_git(repo, "rev-parse", "HEAD"), source=None)


def test_a_repository_without_a_commit_or_no_repository_gives_nothing(tmp_path: Path) -> None:
    assert origin(tmp_path) is None
    _git(tmp_path, "init", "-q")
    assert origin(tmp_path) is None


def test_no_git_on_path_gives_nothing(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo / "nowhere"))

    assert origin(repo) is None


@pytest.mark.parametrize(
    ("remote", "link"),
    [
        ("git@github.com:acme/sandbox.git", "https://github.com/acme/sandbox"),
        ("https://github.com/acme/sandbox", "https://github.com/acme/sandbox"),
        ("https://ci:s3cret@gitlab.example.com/acme/sb.git", "https://gitlab.example.com/acme/sb"),
        ("ssh://git@git.example.com:2222/acme/sb.git", "https://git.example.com/acme/sb"),
        ("http://gitea.local/acme/sb/", "http://gitea.local/acme/sb"),
        ("/srv/git/sb.git", None),
        ("file:///srv/git/sb.git", None),
    ],
)
def test_a_remote_becomes_a_link_without_credentials(remote: str, link: str | None) -> None:
    assert web_url(remote) == link
