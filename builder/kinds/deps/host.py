"""The layer of a `[deps]` npm or pnpm `install` tree assembled on the host, cached under a
key of what its bytes depend on, or None when it must be installed in a container.

Which trees: npm and pnpm projects in mode `install` (npm's by `npm/tree.py` from the
project's package-lock.json, lockfileVersion 2 or 3; pnpm's by `pnpmtree.py`, pnpm 10 and
lockfileVersion 9.0). The lock alone decides the manager, mode and pnpm version
(`refusal`); the project's lockfile and the tarballs can still refuse while building (install
scripts, a binding.gyp, a layout not made here: `NotOnHost`), and the node then falls back to
the container recipe, waiting for its parents. `store` and `mount` modes, pip and uv stay in
the container.

The key hashes `{"recipe", "assembled": "host", "manager", "files": the project files'
sha256s, "installer": the pnpm pin (None for npm), "platform", "epoch"}`: the bytes are the
locked tarballs' files and links laid out by the lock, pnpm's own package, and texts made
from the lock and its epoch; no node ran, no script, no compiler, so nothing of the stage
(the runtime below) is in them, and a node runtime bump (22 -> 24) finds the layer in the
cache. The node's key in sandbox.lock still changes (it holds its parents'); the layer is found
by this key, as the npm tools' are. Reusing it on a new runtime is still proved: `sandbox
check` runs the image, and the tree's programs (pnpm, the .bin shims) run on the new node.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from builder.core import space
from builder.core.keys import sha256_of
from builder.core.unpack import unpack
from builder.engine.step import StepContext
from builder.kinds.deps.pnpmtree import assemble_pnpm_tree
from builder.kinds.layer import store
from builder.kinds.npm.tree import NotOnHost, Project, Target, assemble_npm_tree
from builder.model.lockfile import NodeLock
from builder.model.spec import DepManager, DepMode
from builder.model.toolinputs import DepsInputs
from builder.net import downloads
from builder.store.cache import Layer, NodeEntry
from builder.store.layers import LayerFile


def refusal(inputs: DepsInputs) -> str | None:
    """Why the lock alone says the tree is installed in a container, or None."""
    manager = inputs.manager
    if manager not in (DepManager.NPM, DepManager.PNPM):
        return f"{manager.value} trees are installed by {manager.value}"
    if inputs.mode is not DepMode.INSTALL:
        return f"mode {inputs.mode.value} warms {manager.value}'s store, which only it writes"
    pin = inputs.installer
    if manager is DepManager.PNPM and (pin is None or not pin.version.startswith("10.")):
        version = pin.version if pin else "unpinned"
        return f"pnpm {version}: the host lays out what pnpm 10 writes"
    return None


def host_key(ctx: StepContext, inputs: DepsInputs, recipe: str) -> str:
    """The cache key of a host-assembled deps layer (the module's docstring says why)."""
    pin = inputs.installer
    return sha256_of(
        {
            "recipe": recipe,
            "assembled": "host",
            "manager": inputs.manager.value,
            "files": dict(sorted(inputs.files.items())),
            "installer": None if pin is None else [pin.version, pin.url, pin.sha256, pin.bin],
            "platform": ctx.platform,
            "epoch": ctx.epoch,
        }
    )


def host_layer(
    ctx: StepContext,
    node: NodeLock,
    files: dict[str, str],
    *,
    prefix: str,
    recipe: str,
) -> LayerFile | None:
    """The tree's layer, from the cache or assembled on the host; None (and why, said)
    when it must be installed in a container."""
    say: Callable[[str], None] = ctx.say or (lambda _text: None)
    inputs = node.inputs_as(DepsInputs)
    if refusal(inputs) is not None:
        return None
    key = host_key(ctx, inputs, recipe)
    entry = ctx.cache.entry(key)
    if entry is not None:
        (found,) = entry.layers
        say(f"  {node.name}: cached (assembled on the host)")
        return LayerFile(
            diff_id=found.diff_id, path=ctx.cache.layer_path(found.diff_id), size=found.size
        )
    work = ctx.cache.scratch(f"{node.name}-host-")
    try:
        with space.room_for(work, what=f"{node.name}: assembling its tree"):
            if inputs.manager is DepManager.NPM:
                built = _npm(ctx, node, files, prefix, work)
            else:
                built = _pnpm(ctx, node, inputs, files, prefix, work)
        stored = store(ctx.cache, built)
    except NotOnHost as exc:
        say(f"  {node.name}: in a container: {exc.reason}")
        return None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    piece = Layer(diff_id=stored.diff_id, size=stored.size)
    ctx.cache.put(NodeEntry(name=f"{node.name}/host", key=key, layers=(piece,)))
    say(f"  {node.name}: assembled on the host")
    return stored


def _npm(
    ctx: StepContext, node: NodeLock, files: dict[str, str], prefix: str, work: Path
) -> LayerFile:
    """`npm ci` of the project's package-lock.json, laid out by `npm/tree.py`."""
    lock = json.loads(files["package-lock.json"])
    if lock.get("lockfileVersion") not in (2, 3):
        msg = f"package-lock.json has lockfileVersion {lock.get('lockfileVersion')}, not 2 or 3"
        raise NotOnHost(msg)
    entries: dict[str, Any] = lock.get("packages") or {}
    root = entries.get("", {})
    packages = [{"path": path, **pin} for path, pin in entries.items() if path]
    for pin in packages:
        if not str(pin["path"]).startswith("node_modules/"):
            msg = f"{pin['path']} is a workspace folder, not a package in node_modules"
            raise NotOnHost(msg)
    kinds = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
    project = Project(
        name=str(root.get("name") or lock.get("name")),
        version=root.get("version"),
        roots=tuple(dict.fromkeys(n for kind in kinds for n in root.get(kind) or {})),
        files={
            "package.json": files["package.json"],
            "package-lock.json": files["package-lock.json"],
        },
    )
    return assemble_npm_tree(
        project=project,
        packages=packages,
        folder=prefix,
        target=Target.of(ctx.platform),
        cacache=ctx.cache.downloads / "npm" / "_cacache",
        epoch=ctx.epoch,
        dest=work / "layer.tar",
        what=node.name,
    )


def _pnpm(
    ctx: StepContext,
    node: NodeLock,
    inputs: DepsInputs,
    files: dict[str, str],
    prefix: str,
    work: Path,
) -> LayerFile:
    """pnpm's isolated tree of the project's pnpm-lock.yaml, with pnpm itself, by
    `pnpmtree.py`; pnpm's package checked against the lock's sha256."""
    pin = inputs.installer
    if pin is None or pin.bin is None:  # `refusal` lets only a pinned pnpm by
        msg = f"{node.name}: sandbox.lock pins no pnpm"
        raise NotOnHost(msg)
    archive = downloads.fetch(
        pin.url, sha256=pin.sha256, dest_dir=ctx.cache.downloads, what=node.name
    )
    unpack(archive, work / "pnpm", fmt="tgz", root="package")
    return assemble_pnpm_tree(
        files=files,
        pnpm=work / "pnpm",
        pnpm_bin=pin.bin,
        pnpm_version=pin.version,
        prefix=prefix,
        cacache=ctx.cache.downloads / "npm" / "_cacache",
        epoch=ctx.epoch,
        dest=work / "layer.tar",
        what=node.name,
    )
