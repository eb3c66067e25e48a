"""`python -m tests.integration.containerci RECIPE SANDBOX_TOML CACHE_DIR`: the container
recipe of the project's locked nodes, whatever the build chose, for a test to compare with
what the build assembled on the host; prints what it made as JSON. RECIPE is one of:

- `npm`: `npm ci` of every tool of tools.npm in a container of its parents (as a tree with
  install scripts gets it); prints folder -> [diff ID, layer file];
- `deps`: each `[deps]` node installed by its manager in a container of its parents; prints
  node -> [diff ID, layer file];
- `pip`: tools.pip's venvs made by `python3 -m venv` and pip in a container of its parents;
  prints [diff ID, layer file] of its one layer.

None of these layers is put in the cache under the build's keys, so none stands in for the
build's. A program of its own, as `sandbox` is: the engine's sockets live and die with this
process.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from builder.core.keys import sha256_of
from builder.core.progress import Progress
from builder.engine.choice import EngineFactory
from builder.engine.step import StepContext
from builder.kinds import KINDS
from builder.model import lockfile
from builder.model.lockfile import NodeLock
from builder.realize.execute import Executor
from builder.store.cache import Cache

PLATFORM = "linux/amd64"
Nodes = Mapping[str, NodeLock]


def npm(ctx: StepContext, nodes: Nodes) -> Any:
    from builder.kinds.npm.layers import tool_closures
    from builder.kinds.npm.recipe import Todo, install_in_container

    node = nodes["tools.npm"]
    stage = ctx.stage(node.name)
    todo: Todo = {
        folder: (spec, closure, sha256_of({"npm ci": spec, "closure": closure, "in": stage}))
        for folder, (spec, closure) in tool_closures(node).items()
    }
    built = install_in_container(ctx, node, todo)
    return {folder: [layer.diff_id, str(layer.path)] for folder, layer in built.items()}


def deps(ctx: StepContext, nodes: Nodes) -> Any:
    from builder.kinds.deps.recipe import install_in_container

    built = {
        name: install_in_container(ctx, node)
        for name, node in sorted(nodes.items())
        if name.startswith("deps.")
    }
    return {name: [layer.diff_id, str(layer.path)] for name, layer in built.items()}


def pip(ctx: StepContext, nodes: Nodes) -> Any:
    from builder.kinds.pip.recipe import build_in_container

    (layer,) = build_in_container(ctx, nodes["tools.pip"]).layers
    return [layer.diff_id, str(layer.path)]


RECIPES: dict[str, Callable[[StepContext, Nodes], Any]] = {"npm": npm, "deps": deps, "pip": pip}


def run(recipe: str, spec: Path, cache_dir: Path) -> Any:
    """This program run on `spec`'s lock (as the test's own process must not hold the
    engine's sockets); what it printed, read back."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", __name__, recipe, str(spec), str(cache_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    return json.loads(done.stdout)


def main(recipe: str, spec: Path, cache_dir: Path) -> None:
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
    print(json.dumps(RECIPES[recipe](ctx, nodes)))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
