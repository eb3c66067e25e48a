"""`python -m tests.integration.pipci SANDBOX_TOML CACHE_DIR`: the container recipe of the
project's locked tools.pip (`python3 -m venv` and pip in a container of its parents), whatever
the build chose; prints [diff ID, layer file] of the one layer it makes, as JSON.

A program of its own, as `sandbox` is: the test compares what it prints with the venvs the
build laid on the host, and the engine's sockets live and die with this process. The layer is
not put in the cache under any key, so it does not stand in for the build's.
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
from builder.kinds.pip.recipe import build_in_container
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
    (layer,) = build_in_container(ctx, nodes["tools.pip"]).layers
    print(json.dumps([layer.diff_id, str(layer.path)]))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
