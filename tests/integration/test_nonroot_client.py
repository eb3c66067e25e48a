"""A client that is not root (issue 16): a user in the `docker` group locks, builds and checks.

The user is made here with `useradd` (in group docker, no home), and runs the CLI with
Debian's /usr/bin/python3 from a copy of `builder/` and of the packages it needs, in a folder
it owns, with its own cache dir: the checkout and the venv's interpreter may lie under a
folder it cannot read. Its layers must be owned by root and carry the diff IDs a root build
of the same lock gives (tar records the packing user's uid unless told otherwise).
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import builder
from tests.integration.conftest import Project, Run, docker

pytestmark = pytest.mark.docker

USER = "sandbox-test-client"
PYTHON = Path("/usr/bin/python3")

SPEC = """
[image]
name = "sandbox-test/nonroot"

[base]
image = "{base}"

[system]
packages = ["python3"]

[runtimes]
node = {{ version = "22", provider = "pypi" }}

[tools]
npm = ["semver@7.6.3"]
pip = ["pyflakes==3.2.0"]
"""


def _closure(name: str) -> list[md.Distribution]:
    """The distribution `name` and every one it needs at run time (no extras)."""
    seen: dict[str, md.Distribution] = {}
    todo = [name]
    while todo:
        dist = md.distribution(todo.pop())
        key = dist.metadata["Name"].lower()
        if key in seen:
            continue
        seen[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


@pytest.fixture(scope="module")
def client() -> Iterator[tuple[str, Path]]:
    """(user name, a folder it owns holding the CLI's code), removed after."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" not in _python_version():
        pytest.fail(f"{PYTHON} must be Python {sys.version_info[:2]} (the venv's compiled wheels)")
    made = subprocess.run(["id", USER], capture_output=True, check=False).returncode != 0
    if made:
        subprocess.run(["useradd", "--no-create-home", "--groups", "docker", USER], check=True)
    folder = Path(tempfile.mkdtemp(prefix="sandbox-client-"))
    try:
        code = folder / "code"
        shutil.copytree(Path(builder.__file__).parent, code / "builder")
        for dist in _closure("sandbox-builder"):
            if dist.metadata["Name"] == "sandbox-builder":
                continue
            for file in dist.files or []:
                source = Path(str(dist.locate_file(file)))
                if source.is_file() and ".." not in file.parts:
                    (code / file).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, code / file)
        entry = pwd.getpwnam(USER)
        subprocess.run(["chown", "-R", f"{entry.pw_uid}:{entry.pw_gid}", str(folder)], check=True)
        folder.chmod(0o755)
        yield USER, folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(KeyError):  # its trees' folder in memory (builder/core/scratch.py)
            shutil.rmtree(f"/dev/shm/sandbox-builder-{pwd.getpwnam(USER).pw_uid}", True)
        if made:
            subprocess.run(["userdel", USER], check=False)


def _python_version() -> str:
    if not PYTHON.exists():
        return ""
    return subprocess.run([str(PYTHON), "--version"], capture_output=True, text=True).stdout


def _as_user(user: str, folder: Path, spec: Path, *args: str) -> Run:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(folder),
        "PYTHONPATH": str(folder / "code"),
        "SANDBOX_CACHE_DIR": str(folder / "cache"),
    }
    sandbox = [str(PYTHON), "-m", "builder", "-f", str(spec), *args]
    clean_env = [f"{k}={v}" for k, v in env.items()]
    done = subprocess.run(
        ["runuser", "-u", user, "--", "env", "-i", *clean_env, *sandbox],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    return Run(code=done.returncode, out=done.stdout, err=done.stderr)


def test_a_docker_group_user_builds_the_layers_root_builds(
    client: tuple[str, Path], project: Project, base_image: str
) -> None:
    user, folder = client
    work = folder / "project"
    work.mkdir()
    shutil.chown(work, user, user)
    spec = work / "sandbox.toml"
    spec.write_text(SPEC.format(base=base_image))

    locked = _as_user(user, folder, spec, "lock")
    assert locked.code == 0, locked.err
    built = _as_user(user, folder, spec, "build", "--json")
    assert built.code == 0, built.err
    mine = json.loads(built.out)
    checked = _as_user(user, folder, spec, "check", "--json")
    results = {r["check"]: r for r in json.loads(checked.out)}

    # The same lock built by root, in the session's shared cache.
    project.write(spec.read_text())
    shutil.copy(work / "sandbox.lock", project.lock)
    theirs = json.loads(project.ok("build", "--json").out)

    # Laid on the host both times: the user's builder runs on Debian's python3 (3.11.2),
    # root's on the venv's (another patch release); the .pyc bytes are the same.
    assert re.search(r"tools.pip: pyflakes (cached \()?assembled on the host", built.err)
    assert {n["name"]: n["layer"] for n in mine["nodes"]} == {
        n["name"]: n["layer"] for n in theirs["nodes"]
    }
    assert mine["image"]["id"] == theirs["image"]["id"]
    owners = docker(
        "run", "--rm", "--user", "0", "--entrypoint", "/bin/sh", mine["image"]["id"], "-c",
        "stat -c '%u:%g %n' /opt/sandbox/runtime/node/bin/node "
        "/opt/sandbox/tools/npm/semver/node_modules/semver/package.json "
        "/opt/sandbox/tools/pip/pyflakes/bin/pyflakes",
    )  # fmt: skip
    assert [line.split()[0] for line in owners.splitlines()] == ["0:0"] * 3, owners
    # check ran as that user; git is not in this base, which is the one failure it names.
    assert results["runtime.node"]["ok"], results
    assert results["tools.npm semver"]["ok"], results
    assert any(name.startswith("tools.pip") and r["ok"] for name, r in results.items()), results
    assert [name for name, r in results.items() if not r["ok"]] == ["git"], results
    assert checked.code == 5
    # What its steps wrote as root into its cache and trees was handed back to it.
    uid = pwd.getpwnam(user).pw_uid
    trees = Path(f"/dev/shm/sandbox-builder-{uid}")
    mine_all = [*(folder / "cache").rglob("*"), *trees.rglob("*")]
    foreign = [p for p in mine_all if p.lstat().st_uid != uid]
    assert foreign == []
    assert os.access(folder / "cache", os.W_OK)
