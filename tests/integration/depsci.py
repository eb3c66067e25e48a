"""`python -m tests.integration.depsci SANDBOX_TOML CACHE_DIR`: each `[deps]` node of the
project's lock installed by its manager in a container of its parents (the container recipe,
which a tree with install scripts gets), whatever the build chose; prints node -> [diff ID,
layer file] as JSON.

A program of its own, as `sandbox` is: the test compares what it prints with the layers the
build assembled on the host, and the engine's sockets live and die with this process.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from builder.core.progress import Progress
from builder.engine.choice import EngineFactory
from builder.engine.step import StepContext
from builder.kinds import KINDS
from builder.kinds.deps.recipe import install_in_container
from builder.model import lockfile
from builder.realize.execute import Executor
from builder.store.cache import Cache

PLATFORM = "linux/amd64"


def main(spec: Path, cache_dir: Path) -> None:
    lock = lockfile.read(spec.parent / "sandbox.lock", KINDS)
    nodes = lock.nodes(PLATFORM)
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
    built = {
        name: install_in_container(ctx, node)
        for name, node in sorted(nodes.items())
        if name.startswith("deps.")
    }
    print(json.dumps({name: [layer.diff_id, str(layer.path)] for name, layer in built.items()}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
