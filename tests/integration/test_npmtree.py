"""The npm tree assembled on the host (builder/kinds/npm/tree.py) against the truth: the
layers `npm ci` makes in a container of the node runtime, for the example's npm tools; and
what assembling them on the host buys: a node runtime bump reuses them.

Each tool's host-assembled tar must equal its container-built layer file by file (paths,
types, modes, owners, mtimes, link targets, bytes), and so byte for byte (same diff ID).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import tomllib
from pathlib import Path

import pytest

from builder.kinds import KINDS
from builder.kinds.npm.layers import in_container, tool_closures
from builder.model import lockfile
from builder.store.cache import Cache
from tests.integration import containerci
from tests.integration.conftest import Project, docker

pytestmark = pytest.mark.docker

# examples/codex-cloud's npm tools: a plain package with a bin (@vercel/ncc), and one whose
# binary comes in optional per-platform packages, five of six left out on linux/amd64 (turbo)
SPEC = """
[image]
name = "sandbox-test/npmtree"

[base]
bootstrap = { suite = "bookworm" }

[runtimes]
node = { version = "22.20.0", provider = "pypi" }

[tools]
npm = ["@vercel/ncc@0.45.0", "turbo@2.11.11"]
"""

Listing = dict[str, tuple[str, int, int, int, int, str, str]]


def _listing(layer: Path) -> Listing:
    """name -> (type, mode, uid, gid, mtime, link target, sha256 of the bytes)."""
    found: Listing = {}
    with tarfile.open(layer) as tar:
        for m in tar:
            data = tar.extractfile(m) if m.isreg() else None
            digest = hashlib.sha256(data.read()).hexdigest() if data is not None else ""
            found[m.name] = (
                m.type.decode(),
                m.mode,
                m.uid,
                m.gid,
                int(m.mtime),
                m.linkname,
                digest,
            )
    return found


def test_host_assembled_npm_layers_equal_the_container_built_ones(project: Project) -> None:
    """The build assembles both tools on the host; `npm ci` of each in a container of the
    same parents (the container recipe, as a tree with install scripts gets) gives the very
    same layer."""
    project.write(SPEC)
    project.ok("lock")
    project.ok("build")
    lock = lockfile.read(project.lock, KINDS)
    node = lock.nodes("linux/amd64")["tools.npm"]
    cache = Cache(project.cache)
    entry = cache.entry(node.key)
    assert entry is not None
    tools = tool_closures(node)
    assert not in_container(node)  # no tool here needs a container: both were assembled
    host = dict(zip(sorted(tools), entry.layers, strict=True))  # one layer per tool, by folder

    npm_ci = containerci.run("npm", project.spec, project.cache)
    printed = npm_ci.items()
    built = {folder: (diff_id, Path(path)) for folder, (diff_id, path) in printed}

    assert sorted(built) == sorted(host)
    for folder, (diff_id, path) in sorted(built.items()):
        ours, npms = _listing(cache.layer_path(host[folder].diff_id)), _listing(path)
        assert sorted(ours) == sorted(npms), folder
        differ = {n: (ours[n], npms[n]) for n in ours if ours[n] != npms[n]}
        assert differ == {}, folder
        assert list(ours) == list(npms), folder  # the same order
        assert diff_id == host[folder].diff_id, folder


def _npm_layers(project: Project) -> tuple[str, list[str]]:
    """The key of the lock's tools.npm node and the diff IDs of its built layers."""
    lock = tomllib.loads(project.lock.read_text())
    key = lock["platforms"]["linux/amd64"]["nodes"]["tools.npm"]["key"]
    entry = Cache(project.cache).entry(key)
    assert entry is not None
    return key, [layer.diff_id for layer in entry.layers]


def test_a_node_runtime_bump_reuses_the_host_assembled_npm_layers(project: Project) -> None:
    """The tools' trees hold nothing of the runtime: node 22 -> 24 rebuilds runtime.node, the
    npm layers come out of the cache as they were, and `check` runs the tools on node 24."""
    with_git = '[system]\npackages = ["git"]  # check wants it\n\n[runtimes]'
    spec = SPEC.replace("[runtimes]", with_git)
    project.write(spec)
    project.ok("lock")
    first = project.ok("build", "--json")
    key, layers = _npm_layers(project)
    assert "in a container" not in first.err

    project.write(spec.replace('version = "22.20.0"', 'version = "24"'))
    project.ok("lock")
    second = project.ok("build", "--json")

    bumped, again = _npm_layers(project)
    assert bumped != key  # tools.npm sits on the new runtime: a new node key ...
    assert again == layers  # ... whose layers are the very same, taken from the cache
    for tool in ("@vercel/ncc@0.45.0", "turbo@2.11.11"):
        assert f"tools.npm: {tool} cached (assembled on the host)" in second.err, second.err
    assert "assembled on the host\n" not in second.err
    image = json.loads(second.out)["image"]["id"]
    assert docker("run", "--rm", image, "node", "--version").startswith("v24."), image
    project.ok("check")
