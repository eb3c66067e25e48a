"""npm and pnpm `[deps]` trees assembled on the host (builder/kinds/deps/host.py) against the
truth: the layers `npm ci` and `pnpm install --frozen-lockfile` make in a container of the
node runtime, for tests/fixtures/deps/npm and tests/fixtures/deps/pnpm; and what assembling
them on the host buys: a node runtime bump reuses them.

Each host-assembled tar must equal its container-built layer file by file (paths, types,
modes, owners, mtimes, link targets, bytes), and so byte for byte (same diff ID): pnpm's
metadata files included, so no path differs.
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from builder.store.cache import Cache
from tests.integration import containerci
from tests.integration.conftest import Project, docker
from tests.integration.test_npmtree import _listing

pytestmark = pytest.mark.docker

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "deps"
SPEC = """
[image]
name = "sandbox-test/depstree"
user = "agent"

[base]
bootstrap = { suite = "bookworm" }

[system]
packages = ["git"]  # check wants it

[runtimes]
node = { version = "22.20.0", provider = "pypi" }

[deps.web]
manager = "pnpm"
path = "web"
mode = "install"

[deps.api]
manager = "npm"
path = "api"
mode = "install"
"""


def _project(project: Project, spec: str = SPEC) -> None:
    for name, fixture in (("web", "pnpm"), ("api", "npm")):
        if not (project.root / name).exists():
            shutil.copytree(FIXTURES / fixture, project.root / name)
    project.write(spec)


def _layers(project: Project) -> dict[str, tuple[str, str]]:
    """Each deps node: its key in the lock and the diff ID of the layer the build made."""
    lock = tomllib.loads(project.lock.read_text())
    nodes = lock["platforms"]["linux/amd64"]["nodes"]
    built = json.loads(project.ok("build", "--json").out)
    return {
        n["name"]: (nodes[n["name"]]["key"], n["layer"])
        for n in built["nodes"]
        if n["name"].startswith("deps.")
    }


def test_host_assembled_deps_layers_equal_the_container_built_ones(project: Project) -> None:
    """The build assembles both trees on the host; the managers in a container of the same
    parents (the container recipe) give the very same layers."""
    _project(project)
    project.ok("lock")
    build = project.ok("build", "--json")
    for name in ("deps.web", "deps.api"):  # cached when an earlier test built the same tree
        assert re.search(rf"{name}: (cached \()?assembled on the host", build.err), build.err
    host = {n["name"]: n["layer"] for n in json.loads(build.out)["nodes"]}
    image = json.loads(build.out)["image"]["id"]

    done = containerci.run("deps", project.spec, project.cache)
    containers = {name: (d, Path(p)) for name, (d, p) in done.items()}
    assert sorted(containers) == ["deps.api", "deps.web"]
    cache = Cache(project.cache)
    for name, (diff_id, path) in containers.items():
        ours, theirs = _listing(cache.layer_path(host[name])), _listing(path)
        assert sorted(ours) == sorted(theirs), name
        differ = {n: (ours[n], theirs[n]) for n in ours if ours[n] != theirs[n]}
        assert differ == {}, name
        assert list(ours) == list(theirs), name
        assert diff_id == host[name], name

    # the pnpm tree works: node finds each direct dependency as a stranger, pnpm says it
    # is up to date with its lockfile
    script = (
        'node -e \'require("cowsay"); require("is-odd")\' '
        "&& cowsay -f tux host > /dev/null "
        "&& cd /opt/sandbox/deps/web && pnpm ls --depth 0"
    )
    out = docker("run", "--rm", "--user", "12345:12345", image, "bash", "-lc", script)
    assert "cowsay@1.6.0" in out, out
    assert "is-odd@3.0.1" in out, out


def test_a_node_runtime_bump_reuses_the_host_assembled_deps_layers(project: Project) -> None:
    """The trees hold nothing of the runtime: node 22 -> 24 gives the deps nodes new keys,
    whose layers are the very same, taken from the cache; `check` passes on node 24."""
    _project(project)
    project.ok("lock")
    first = _layers(project)
    _project(project, SPEC.replace('version = "22.20.0"', 'version = "24"'))
    project.ok("lock")
    second = project.ok("build", "--json")
    after = {n["name"]: (n["layer"]) for n in json.loads(second.out)["nodes"]}
    for name in ("deps.web", "deps.api"):
        assert f"{name}: cached (assembled on the host)" in second.err, second.err
        assert after[name] == first[name][1], name
    lock = tomllib.loads(project.lock.read_text())
    assert lock["platforms"]["linux/amd64"]["nodes"]["deps.web"]["key"] != first["deps.web"][0]
    image = json.loads(second.out)["image"]["id"]
    assert docker("run", "--rm", image, "node", "--version").startswith("v24."), image
    project.ok("check")
