"""The npm tree assembled on the host (builder/kinds/npm/tree.py) against the truth: the
layers `npm ci` makes in a container of the node runtime, for the example's npm tools.

Each tool's host-assembled tar must equal its container-built layer file by file (paths,
types, modes, owners, mtimes, link targets, bytes), and so byte for byte (same diff ID).
"""

from __future__ import annotations

import hashlib
import tarfile
import tomllib
from pathlib import Path

import pytest

from builder.resolve import managers
from builder.kinds.npm.tree import Target, assemble_npm_tree
from builder.kinds.npm.layers import NPM_PREFIX, npm_folder
from builder.store.cache import Cache
from tests.integration.conftest import Project

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


def test_host_assembled_npm_layers_equal_the_container_built_ones(
    project: Project, tmp_path: Path
) -> None:
    project.write(SPEC)
    project.ok("lock")
    project.ok("build")
    lock = tomllib.loads(project.lock.read_text())
    node = lock["platforms"]["linux/amd64"]["nodes"]["tools.npm"]
    cache = Cache(project.cache)
    entry = cache.entry(node["key"])
    assert entry is not None
    specs, packages = node["inputs"]["tools"], node["inputs"]["packages"]
    folders = sorted(npm_folder(managers.npm_dependency(s)[0]) for s in specs)
    built = dict(zip(folders, entry.layers, strict=True))  # one layer per tool, by folder

    for spec in specs:
        name = managers.npm_dependency(spec)[0]
        folder = npm_folder(name)
        layer = assemble_npm_tree(
            specs=[spec],
            packages=managers.npm_closure(packages, name),
            folder=f"{NPM_PREFIX}/{folder}/",
            target=Target.of("linux/amd64"),
            cacache=cache.downloads / "npm" / "_cacache",  # warm: npm ci just filled it
            epoch=lock["source_date_epoch"],
            dest=tmp_path / f"{folder}.tar",
        )
        host, container = _listing(layer.path), _listing(cache.layer_path(built[folder].diff_id))
        assert sorted(host) == sorted(container), folder
        differ = {n: (host[n], container[n]) for n in host if host[n] != container[n]}
        assert differ == {}, folder
        assert list(host) == list(container), folder  # the same order
        assert layer.diff_id == built[folder].diff_id, folder
