"""The git repository a spec lives in: where its source can be fetched and which commit it is.

A pushed image's manifest names them (`org.opencontainers.image.source` and `.revision`,
`builder/image/annotations.py`), so a registry UI or a scanner links the image to its code.
They are context, not inputs: a folder outside git, a repository without a commit or a remote,
or no `git` on PATH each give less (None, or a revision without a source), never an error. So
git is run directly here rather than through `proc.run`, which turns a failure into one; with
`--verbose` the commands are echoed as `proc.run` does.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from builder.core import proc


@dataclass(frozen=True, kw_only=True)
class GitOrigin:
    revision: str  # the full commit hash of HEAD
    source: str | None  # the `origin` remote as an https URL without credentials, if any


def origin(folder: Path) -> GitOrigin | None:
    """HEAD's commit and the origin remote of the repository holding `folder`, if any."""
    if shutil.which("git") is None:
        return None
    revision = _git(folder, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if revision is None or not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", revision):
        return None
    remote = _git(folder, "remote", "get-url", "origin")
    return GitOrigin(revision=revision, source=web_url(remote) if remote else None)


def web_url(remote: str) -> str | None:
    """A remote URL as a link a person can open, or None for a local path: credentials
    dropped, `git@host:path` and `ssh://` spelled as https, no `.git` suffix (as
    docker/metadata-action writes it)."""
    url = remote.strip()
    scp = re.fullmatch(r"(?:[^@/]+@)?([^:/]+):(?!//)(.+)", url)
    if scp:
        url = f"https://{scp.group(1)}/{scp.group(2)}"
    url = re.sub(r"^(?:ssh|git|git\+ssh)://(?:[^@/]+@)?([^/:]+)(?::\d+)?/", r"https://\1/", url)
    url = re.sub(r"^(https?://)[^/@]*@", r"\1", url)  # user:token@ must not reach a registry
    if not url.startswith(("https://", "http://")):
        return None
    return url.removesuffix("/").removesuffix(".git")


def _git(folder: Path, *args: str) -> str | None:
    argv = ["git", "-C", str(folder), *args]
    if proc.VERBOSE:
        print("+ " + shlex.join(argv), file=sys.stderr)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None
