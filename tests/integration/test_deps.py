"""`[deps]` layers end to end: real projects with real lockfiles, locked and built once.

One project holds a pnpm tree (install), a pnpm store, an npm cache (store), a pip venv
(install) and a uv venv (mount); the managers come from Debian (node 18, python 3.11) in the
system layer, which every test image shares through the session cache. The checks run the
image the way an agent does: as its default user or `--user 12345:12345`, network off.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Project, docker
from tests.integration.risoluto_spawn import run_agent

pytestmark = pytest.mark.docker

FIXTURES = Path(__file__).parent.parent / "fixtures" / "deps"
SPEC = """
[image]
name = "sandbox-test/deps"
user = "agent"

[base]
bootstrap = { suite = "bookworm" }

[deps.web]
manager = "pnpm"
path = "pnpm"
mode = "install"

[deps.site]
manager = "pnpm"
path = "pnpm"
mode = "store"

[deps.tool]
manager = "npm"
path = "npm"
mode = "store"

[deps.lib]
manager = "pip"
path = "pip"
mode = "install"

[deps.api]
manager = "uv"
path = "uv"
mode = "mount"
mount = "/workspace/api/.venv"
"""


@dataclass(frozen=True)
class Built:
    project: Project
    image: str
    nodes: dict[str, str]  # name -> status
    overlay: dict[str, Any]


def lock(project: Project, *args: str) -> None:
    project.ok("lock", *args)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> Built:
    root = tmp_path_factory.mktemp("deps-project")
    shutil.copytree(FIXTURES, root, dirs_exist_ok=True)
    project = Project(root=root, cache=shared_cache)
    project.write(SPEC)
    lock(project)
    overlay = root / "overlay.json"
    result = json.loads(project.ok("build", "--json", "--overlay", str(overlay)).out)
    return Built(
        project=project,
        image=result["image"]["id"],
        nodes={n["name"]: n["status"] for n in result["nodes"]},
        overlay=json.loads(overlay.read_text()),
    )


def run(built: Built, script: str, *, user: str = "", mounts: tuple[str, ...] = ()) -> str:
    """`script` in a container of the image with the network off (and the projects at /src)."""
    args = ["run", "--rm", "--network", "none", "-v", f"{built.project.root}:/src:ro"]
    if user:
        args += ["--user", user, "-e", "HOME=/home/agent"]
    for mount in mounts:
        args += ["-v", mount]
    return docker(*args, built.image, "sh", "-ec", script)


def test_every_deps_node_is_built_and_the_lock_pins_the_managers(built: Built) -> None:
    assert {n: s for n, s in built.nodes.items() if n.startswith("deps.")}.keys() == {
        "deps.web",
        "deps.site",
        "deps.tool",
        "deps.lib",
        "deps.api",
    }
    nodes = tomllib.loads(built.project.lock.read_text())["platforms"]["linux/amd64"]["nodes"]
    web = nodes["deps.web"]["inputs"]
    assert web["manager"] == "pnpm"
    assert web["pnpm"]["requested"] == "lockfileVersion 9.0 on node 18"
    assert web["pnpm"]["version"].split(".")[0] in ("9", "10")
    assert len(web["pnpm"]["sha256"]) == 64
    assert set(nodes["deps.api"]["inputs"]["uv"]) == {"version", "url", "sha256", "requested"}
    assert "pnpm" not in nodes["deps.tool"]["inputs"]


def test_pnpm_install_puts_the_tree_under_the_prefix_and_its_bin_runs(built: Built) -> None:
    out = run(
        built,
        "ls /opt/sandbox/deps/web/node_modules; cowsay -f tux moo; "
        "node -e 'console.log(require(\"is-odd\")(3))'",
        user="12345:12345",
    )
    assert "cowsay" in out.split()
    assert "is-odd" in out.split()
    assert "< moo >" in out
    assert out.endswith("true")


def test_pnpm_store_lets_the_task_install_offline(built: Built) -> None:
    script = (
        "mkdir -p /tmp/ws && cp /src/pnpm/package.json /src/pnpm/pnpm-lock.yaml /tmp/ws/ && "
        "cd /tmp/ws && pnpm install --frozen-lockfile --offline && "
        "./node_modules/.bin/cowsay offline"
    )
    for user in ("", "12345:12345"):  # the image's agent (uid 1000), then any uid
        out = run(built, script, user=user)
        assert "< offline >" in out, f"as {user or 'agent'}:\n{out}"


def test_npm_store_lets_npm_ci_run_offline(built: Built) -> None:
    out = run(
        built,
        "mkdir -p /tmp/ws && cp /src/npm/package*.json /tmp/ws/ && cd /tmp/ws && "
        "npm ci --offline --no-audit --no-fund && "
        'node -e \'console.log(require("left-pad")("x", 3))\'',
        user="12345:12345",
    )
    assert out.endswith("  x")


def test_pip_install_is_a_venv_on_path(built: Built) -> None:
    out = run(
        built,
        "/opt/sandbox/deps/lib/venv/bin/python -c 'import six, idna; print(six.__version__)'",
        user="12345:12345",
    )
    assert out == "1.16.0"


def test_mount_exports_the_tree_and_the_overlay_mounts_it_read_only(built: Built) -> None:
    sandbox = built.overlay["codex"]["sandbox"]
    mounts = [m for m in sandbox["extra_mounts"] if m.endswith(":/workspace/api/.venv:ro")]
    assert len(mounts) == 1
    host = Path(mounts[0].split(":")[0])
    assert host.is_relative_to(built.project.cache / "deps" / "api")
    assert (host / "pyvenv.cfg").is_file()
    pyflakes = "/workspace/api/.venv/bin/pyflakes --version"
    out = run(built, pyflakes, user="12345:12345", mounts=(mounts[0],))
    assert out.startswith("3.2.0")


def test_relock_is_stable_and_a_changed_lockfile_makes_the_lock_stale(built: Built) -> None:
    project = built.project
    before = project.lock.read_bytes()
    lock(project)
    assert project.lock.read_bytes() == before
    requirements = project.root / "pip" / "requirements.txt"
    original = requirements.read_text()
    try:
        requirements.write_text(original + "\n")
        assert project.sandbox("lock", "--check").code == 3
        assert project.sandbox("build").code == 3
    finally:
        requirements.write_text(original)


def test_every_deps_tree_is_found_in_the_agents_login_shell(built: Built, tmp_path: Path) -> None:
    """As Risoluto runs the agent (risoluto_spawn.py: the image's entrypoint, `bash -lc`,
    umask 077, uid 12345): the trees' bins, NODE_PATH, the venv and the stores' settings."""
    out = run_agent(
        built.image,
        "set -e; cowsay moo; node -e 'console.log(require(\"is-odd\")(3))'; "
        "python -c 'import six, idna; print(six.__version__)'; "
        'echo "$npm_config_cache $pnpm_config_store_dir"',
        workspace=tmp_path / "workspace",
    )
    assert "< moo >" in out
    lines = out.strip().splitlines()
    assert lines[-3:] == [
        "true",
        "1.16.0",
        "/opt/sandbox/deps/tool/npm-cache /opt/sandbox/deps/site/store",
    ]
