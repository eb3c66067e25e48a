"""Exporting a deps node's tree to the host, for `[deps.<name>] mount` (DESIGN.md §2).

The tree (node_modules or a venv) is taken from the node's own layer in the cache, not from
a container, so the host copy is exactly what the image holds. It lands in
`<cache dir>/deps/<name>/<first 12 of the node key>/`: a new lock gets a new folder, so a
rebuild never changes a tree that a running agent has mounted, and an unchanged lock reuses
the folder without extracting anything. It is extracted into the cache's scratch folder and
renamed into place, so an interrupted export leaves no half tree under a valid name.

Symlinks are kept as they are, also absolute ones (a venv's `python` -> /usr/bin/python3):
they are resolved inside the container, where the mount sits next to the image's own copy
of the prefix. Nothing is ever written through one (tarfile's `tar` filter refuses it).
"""

from __future__ import annotations

import shutil
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from builder.core.errors import BuildError
from builder.core.layout import CACHE_DEPS, TREES
from builder.core.layout import DEPS_PREFIX as PREFIX
from builder.kinds.deps import deps_node
from builder.model.spec import DepSpec
from builder.store.cache import Cache, NodeEntry


def deps_mounts(
    *, deps: Sequence[DepSpec], entries: dict[str, NodeEntry], cache: Cache
) -> list[str]:
    """The `extra_mounts` entries (`host:container:ro`) of the deps that set `mount`.

    `entries` maps node names to their built cache entries (all of the lock's nodes).
    """
    mounts = []
    for dep in deps:
        if dep.mount is None:
            continue
        entry = entries[deps_node(dep)]
        host = export_tree(cache, entry=entry, name=dep.name, tree=TREES[dep.manager])
        mounts.append(f"{host}:{dep.mount}:ro")
    return mounts


def export_tree(cache: Cache, *, entry: NodeEntry, name: str, tree: str) -> Path:
    """`<prefix>/<tree>` of the node's layers, extracted under `<cache>/deps/<name>/`."""
    dest = cache.root / CACHE_DEPS / name / entry.key.removeprefix("sha256:")[:12]
    if dest.is_dir():
        return dest
    inside = f"{PREFIX.strip('/')}/{name}/{tree}"
    work = cache.scratch(f"export-{name}-")
    try:
        found = False
        for layer in entry.layers:
            with tarfile.open(cache.layer_path(layer.diff_id)) as tar:
                members = list(_members_under(tar, inside))
                found = found or bool(members)
                tar.extractall(work / "tree", members=members, filter="tar")
        if not found:
            msg = (
                f"deps.{name}: its layer holds no /{inside} to export for `mount`. Use "
                'mode = "install" or "mount" (a store has no tree), or rebuild the node'
            )
            raise BuildError(msg)
        (work / "tree").chmod(0o755)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            (work / "tree").rename(dest)
        except OSError:
            if not dest.is_dir():  # else a concurrent build exported the same tree first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def _members_under(tar: tarfile.TarFile, folder: str) -> Iterator[tarfile.TarInfo]:
    """The members below `folder`, renamed relative to it; hard links made plain files."""
    start = folder + "/"
    for member in tar.getmembers():
        name = member.name.removeprefix("./")
        if not name.startswith(start) or name.rpartition("/")[2].startswith(".wh."):
            continue
        if member.islnk():
            target = member.linkname.removeprefix("./")
            if target.startswith(start):
                member.linkname = target.removeprefix(start)
            else:  # a link to a file outside the tree: keep its data, not the link
                source = tar.getmember(member.linkname)
                member.type, member.size = tarfile.REGTYPE, source.size
                member.offset_data = source.offset_data
        member.name = name.removeprefix(start)
        yield member


def stale_exports(cache: Cache, keep_keys: set[str]) -> list[Path]:
    """Exported trees of nodes no kept key names: what `sandbox gc` may remove."""
    kept = {key.removeprefix("sha256:")[:12] for key in keep_keys}
    folders = (cache.root / CACHE_DEPS).glob("*/*")
    return sorted(p for p in folders if p.is_dir() and p.name not in kept)
