"""The container recipe of npm tools: `npm ci` of each tool's package-lock in a container of
the node's parents, for the trees that need code run (install scripts, node-gyp).

Each tool gets its own folder under NPM_PREFIX, a host folder mounted into the container
(`layer.run_into_prefix`), its package.json and package-lock.json (the tool's closure out of
the lock's) copied in, then `npm ci`; the folder becomes the tool's layer. npm's download
cache is the shared one (`_cacache`), which the host assembler reads and fills too.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from builder.engine.step import INPUT_DIR, StepContext, download_cache_mount
from builder.kinds.layer import run_into_prefix
from builder.model.lockfile import NodeLock
from builder.resolve import managers
from builder.store.cache import Layer, NodeEntry
from builder.store.layers import LayerFile

NPM_PREFIX = "/opt/sandbox/tools/npm"

# folder -> (the tool's spec, its closure of package-lock entries, its layer's cache key)
Todo = dict[str, tuple[str, list[Mapping[str, Any]], str]]


def install_in_container(ctx: StepContext, node: NodeLock, todo: Todo) -> dict[str, LayerFile]:
    """`npm ci` each tool of `todo` in its own folder, in one container; each folder becomes
    a layer, kept in the cache under the tool's key."""
    files: dict[str, str] = {}
    lines = []
    for folder, (spec, closure, _) in sorted(todo.items()):
        files[f"{folder}.package.json"] = managers.npm_package_json([spec])
        files[f"{folder}.package-lock.json"] = managers.npm_package_lock([spec], closure)
        where, given = shlex.quote(f"{NPM_PREFIX}/{folder}"), shlex.quote(f"{INPUT_DIR}/{folder}")
        lines += [
            f"mkdir -p {where}",
            f"cp {given}.package.json {where}/package.json",
            f"cp {given}.package-lock.json {where}/package-lock.json",
            f"(cd {where} && npm ci --no-audit --no-fund --loglevel=warn)",
        ]
    mounts = [download_cache_mount(ctx.cache, "npm", "/root/.npm")]
    built: dict[str, LayerFile] = {}
    with run_into_prefix(
        ctx, node, "\n".join(lines) + "\n", what="tools.npm: npm ci", files=files, mounts=mounts
    ) as capture:
        for folder, (_, _, key) in sorted(todo.items()):
            layer = built[folder] = capture(folder)
            piece = Layer(diff_id=layer.diff_id, size=layer.size)
            ctx.cache.put(NodeEntry(name=f"{node.name}/{folder}", key=key, layers=(piece,)))
    return built
