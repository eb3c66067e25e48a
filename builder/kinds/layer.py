"""What every recipe shares: the step's result, and how a layer is captured.

Three ways make a layer. A container step runs a script in a container of the node's ancestors
(`engine.step.run_in_stage`). When the node owns one prefix (tools, deps), that prefix is a
host folder mounted into the container (`run_into_prefix`; on an engine that cannot see our
files, copied back out of it, engine.Mount): the container's own changes are checked to lie in
scratch only, and the folder is packed on the host, with no commit and no `docker save`. The
system node writes all over `/`, so its container is committed and its diff normalized
(`capture`). A host step fills a folder with files it fetched and checked itself (runtime
archives, binaries) and packs it (`host_layer`). Build-time-only inputs, such as the host's CA
bundle and download caches, are mounts: they are never part of a layer.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from builder.core import space
from builder.core.errors import BuildError
from builder.core.unpack import Tree
from builder.engine.interface import Engine, Mount, diff_folder
from builder.engine.step import StepContext, run_in_stage
from builder.kinds.kind import StepResult, prefix_of
from builder.model.lockfile import NodeLock
from builder.resolve.debian import parse_stanzas
from builder.store.cache import Cache
from builder.store.diffs import UpperDir, top_layer_of_saved_image
from builder.store.layers import (
    LayerFile,
    check_changes,
    listing,
    normalize_tar,
    tar_directory,
    tree_layer,
)

# The recipe of the tool kinds (tools.pip, tools.npm, tools.bin.<name>), each a prefix of its
# own: tools/1; tools/2 (the prefix is a host folder mounted into the step's container and
# packed on the host; the folders above it are made by the tool, mode 755).
TOOLS_RECIPE = "tools/2"
TOOLS_PREVIOUS = ("tools/1",)
# tools.pip's own since tools.pip/3: a venv laid on the host leaves out the bytecode of the
# modules an extension module shadows (pip/venv.py).
PIP_RECIPE = "tools.pip/3"
PIP_PREVIOUS = (TOOLS_RECIPE, *TOOLS_PREVIOUS)


def capture(ctx: StepContext, engine: Engine, container: str, node: NodeLock) -> LayerFile:
    """Keep the step container's diff as a normalized layer.

    The diff is read from the container's overlay2 upper dir when the engine offers it
    (`diff_folder`: no commit, no `docker save` of every layer below); else the container is
    committed and the top layer of its `docker save` archive taken. Engines record the same
    change in different words (opaque markers on new folders, folders whose only change is
    their mtime): it is normalized against the layers below, so each engine gives one tar.
    """
    work = ctx.cache.scratch(f"{node.name}-")
    try:
        upper = diff_folder(engine, container)
        if upper is not None:
            raw: Path | UpperDir = UpperDir(upper)  # read in the one pass normalize makes
        else:
            committed = engine.commit(container)
            try:
                with space.room_for(work / "image.tar", what=f"{node.name}: saving its diff"):
                    engine.save(committed, work / "image.tar")
            finally:
                engine.remove_image(committed)
            raw = top_layer_of_saved_image(work / "image.tar", work / "diff.tar")
            (work / "image.tar").unlink()
        below = None if ctx.below is None else listing(ctx.below(node.name))
        layer = normalize_tar(
            raw,
            work / "layer.tar",
            epoch=ctx.epoch,
            prefix=None,  # the node owns `/`
            node=node.name,
            below=below,
        )
        return store(ctx.cache, layer)
    finally:
        shutil.rmtree(work, ignore_errors=True)


class Capture(Protocol):
    def __call__(self, sub: str | None = None) -> LayerFile: ...


@contextmanager
def run_into_prefix(
    ctx: StepContext,
    node: NodeLock,
    script: str,
    *,
    what: str,
    env: dict[str, str] | None = None,
    mounts: list[Mount] | None = None,
    files: dict[str, str] | None = None,
) -> Iterator[Capture]:
    """`run_in_stage` with the node's prefix a host folder mounted read-write; yields
    `capture(sub)`, which checks that the container changed nothing but scratch outside the
    prefix and packs the folder (or just its subfolder `sub`) into a layer."""
    prefix = prefix_of(node.name)
    with _prefix_tree(ctx, node, prefix) as (root, tar):
        in_cache = root.resolve().is_relative_to(ctx.cache.root.resolve())
        out = Mount(
            source=str(root / prefix.strip("/")),
            target=prefix.rstrip("/"),
            read_only=False,
            setting=space.CACHE_SETTING if in_cache else space.TREE_SETTING,
        )
        with run_in_stage(
            ctx,
            node.name,
            script,
            what=what,
            env=env,
            mounts=[*(mounts or []), out],
            files=files,
        ) as result:
            checked = False

            def pack(sub: str | None = None) -> LayerFile:
                nonlocal checked
                if not checked:  # once per container: `docker diff` takes ~0.7 s
                    check_changes(ctx.engine().changes(result.container), prefix, node.name)
                    checked = True
                only = prefix.strip("/") + (f"/{sub}" if sub else "")
                return store(ctx.cache, tar_directory(root, tar, epoch=ctx.epoch, only=only))

            yield pack


def host_layer(
    ctx: StepContext, node: NodeLock, fill: Callable[[Path], dict[str, str]]
) -> StepResult:
    """A layer made on the host: `fill(folder)` puts the node's files in `folder` (its prefix
    in the image) and returns the env the node contributes."""
    prefix = prefix_of(node.name)
    with _prefix_tree(ctx, node, prefix) as (root, tar):
        env = fill(root / prefix.strip("/"))
        for path in [root, *root.rglob("*")]:
            if not path.is_symlink():  # readable (and folders enterable) by any user
                mode = path.stat().st_mode
                path.chmod(mode | 0o444 | (0o111 if path.is_dir() or mode & 0o100 else 0))
        layer = tar_directory(root, tar, epoch=ctx.epoch)
        return StepResult(layers=[store(ctx.cache, layer)], env=env)


def listed_layer(ctx: StepContext, node: NodeLock, tree: Tree) -> LayerFile:
    """The layer `host_layer` makes of a folder filled as `tree` lists it (its prefix, what
    is in it), written straight from the listing: nothing is unpacked to disk."""
    out = ctx.cache.scratch(f"{node.name}-layer-")
    try:
        layer = tree_layer(tree, out / "layer.tar", under=prefix_of(node.name), epoch=ctx.epoch)
        return store(ctx.cache, layer)
    finally:
        shutil.rmtree(out, ignore_errors=True)


@contextmanager
def _prefix_tree(ctx: StepContext, node: NodeLock, prefix: str) -> Iterator[tuple[Path, Path]]:
    """A scratch root holding the empty folders down to `prefix` (mode 755), in memory when
    the machine has room (`Cache.tree_scratch`), and where to write its layer tar (under the
    cache's tmp/, so storing it is a rename); both removed after."""
    work = ctx.cache.tree_scratch(f"{node.name}-")
    out = ctx.cache.scratch(f"{node.name}-layer-")
    try:
        root = work / "root"
        folder = root / prefix.strip("/")
        folder.mkdir(parents=True)
        for path in [root, *folder.parents]:
            if path.is_relative_to(root):
                path.chmod(0o755)
        folder.chmod(0o755)
        yield root, out / "layer.tar"
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


def verify_installed(got: dict[str, str], locked: dict[str, str], *, node: str) -> None:
    """`got` must hold exactly the `locked` name -> version pins."""
    wrong = [
        f"{n} {got.get(n, 'missing')} (lock: {v})" for n, v in locked.items() if got.get(n) != v
    ]
    extra = sorted(set(got) - set(locked))
    if wrong or extra:
        parts = wrong[:5] + [f"{n} (not in the lock)" for n in extra[:5]]
        msg = (
            f"{node}: installed packages differ from sandbox.lock: {'; '.join(parts)}. The "
            f"mirror has moved on since the lock was made; run `sandbox lock --update {node}`"
        )
        raise BuildError(msg)


def dpkg_status(path: Path) -> dict[str, str]:
    return {
        s["Package"]: s["Version"]
        for s in parse_stanzas(path.read_text())
        if s.get("Status", "").endswith(" installed")
    }


def store(cache: Cache, layer: LayerFile) -> LayerFile:
    return LayerFile(
        diff_id=layer.diff_id, path=cache.store_layer(layer.path, layer.diff_id), size=layer.size
    )
