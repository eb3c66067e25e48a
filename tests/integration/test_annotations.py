"""The standard annotations of a pushed image, read back with skopeo (issue 30).

The image config's labels carry `org.opencontainers.image.{created,title,version,base.name,
base.digest}` from the lock; the pushed manifest adds `source` and `revision` from the git
repository the spec is in. A new commit with the same lock pushes another manifest of the
same image: the image ID does not move.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from tests.integration.conftest import Project

pytestmark = pytest.mark.docker

SPEC = """
[image]
name = "sandbox-test/annotated"
registry = "{registry}"

[base]
image = "{base}"
"""
P = "org.opencontainers.image."


def _skopeo(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return cast(dict[str, Any], json.loads(done.stdout))


def _git(root: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, env=env
    )
    return done.stdout.strip()


def test_a_pushed_image_carries_the_standard_annotations_and_its_id_ignores_git(
    project: Project, base_image: str, registry: str
) -> None:
    _git(project.root, "init", "-q")
    _git(project.root, "remote", "add", "origin", "git@git.example.com:acme/sandbox.git")
    project.write(SPEC.format(registry=registry, base=base_image))
    project.ok("lock")
    _git(project.root, "add", "sandbox.toml", "sandbox.lock")
    _git(project.root, "commit", "-qm", "sandbox")
    lock_epoch = int(project.lock.read_text().split("source_date_epoch = ")[1].split()[0])

    first = json.loads(project.ok("build", "--push", "--json").out)
    ref = first["image"]["ref"]

    inspected = _skopeo(f"docker://{ref}")
    assert inspected["Digest"] == ref.rsplit("@", 1)[1]
    labels = inspected["Labels"]
    created = datetime.fromtimestamp(lock_epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert labels[f"{P}created"] == created
    assert labels[f"{P}title"] == "sandbox-test/annotated"
    assert labels[f"{P}version"] == labels["dev.sandbox-builder.lock"].removeprefix("sha256:")[:12]
    assert labels[f"{P}base.name"] == base_image
    assert labels[f"{P}base.digest"] == base_image
    assert f"{P}source" not in labels, "the config (hence the image ID) names no commit"
    assert f"{P}revision" not in labels

    manifest = _skopeo("--raw", f"docker://{ref}")
    notes = manifest["annotations"]
    assert notes[f"{P}source"] == "https://git.example.com/acme/sandbox"
    assert notes[f"{P}revision"] == _git(project.root, "rev-parse", "HEAD")
    assert {k: v for k, v in labels.items() if k.startswith(P)}.items() <= notes.items()
    config = _skopeo("--raw", "--config", f"docker://{ref}")
    assert f"{P}revision" not in config["config"]["Labels"]

    _git(project.root, "commit", "-q", "--allow-empty", "-m", "another commit, same lock")
    second = json.loads(project.ok("build", "--push", "--json").out)

    assert second["image"]["id"] == first["image"]["id"]
    assert second["image"]["ref"] != ref, "another commit: another manifest"
    again = _skopeo("--raw", f"docker://{second['image']['ref']}")
    assert again["annotations"][f"{P}revision"] == _git(project.root, "rev-parse", "HEAD")
    assert again["config"] == manifest["config"]
