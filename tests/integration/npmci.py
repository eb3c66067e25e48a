"""`python -m tests.integration.npmci SANDBOX_TOML CACHE_DIR`: `npm ci` of every tool of the
project's locked tools.npm in a container of its parents (the container recipe, which a tree
with install scripts gets), whatever the build chose; prints folder -> [diff ID, layer file]
as JSON.

A program of its own, as `sandbox` is: the test compares what it prints with the layers the
build assembled on the host, and the engine's sockets live and die with this process.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from builder.core.keys import sha256_of
from builder.core.progress import Progress
from builder.engine.choice import EngineFactory
from builder.engine.step import StepContext
from builder.kinds import KINDS
from builder.kinds.npm.layers import tool_closures
from builder.kinds.npm.recipe import Todo, install_in_container
from builder.model import lockfile
from builder.realize.execute import Executor
from builder.store.cache import Cache

PLATFORM = "linux/amd64"


def main(spec: Path, cache_dir: Path) -> None:
    lock = lockfile.read(spec.parent / "sandbox.lock", KINDS)
    nodes = lock.nodes(PLATFORM)
    node = nodes["tools.npm"]
    cache = Cache(cache_dir)
    engine = EngineFactory()
    executor = Executor(
        nodes=nodes,
        cache=cache,
        engine=engine,
        platform=PLATFORM,
        epoch=lock.source_date_epoch,
        progress=Progress(io.StringIO()),
        project_dir=spec.parent,
    )
    ctx = StepContext(
        cache=cache,
        engine=engine,
        platform=PLATFORM,
        epoch=lock.source_date_epoch,
        stage=executor.stage_for,
        project_dir=spec.parent,
        below=executor.layers_below,
    )
    stage = executor.stage_for(node.name)
    # under keys of their own: these layers do not stand in for the build's in the cache
    todo: Todo = {
        folder: (spec, closure, sha256_of({"npm ci": spec, "closure": closure, "in": stage}))
        for folder, (spec, closure) in tool_closures(node).items()
    }
    built = install_in_container(ctx, node, todo)
    print(json.dumps({folder: [layer.diff_id, str(layer.path)] for folder, layer in built.items()}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
