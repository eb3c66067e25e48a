"""How each node kind is built into layers (the "recipes" whose versions `keys.py` holds).

A recipe gets the node's locked inputs and a `StepContext`, and returns the normalized layer
files it produced and the env it contributes. It never resolves anything: every version it
installs comes from the lock, and it checks that what got installed is what the lock says.
"""

from __future__ import annotations

from collections.abc import Callable

from builder.core.errors import BuildError
from builder.engine.step import StepContext
from builder.model.lockfile import NodeLock
from builder.realize.recipes.base import build_base
from builder.realize.recipes.common import StepResult
from builder.realize.recipes.deps import build_deps
from builder.realize.recipes.runtime import build_bin, build_runtime
from builder.realize.recipes.system import build_system
from builder.realize.recipes.tools import build_npm_tools, build_pip_tools

__all__ = ["StepResult", "build"]

Recipe = Callable[[StepContext, NodeLock], StepResult]


def recipe_for(node: NodeLock) -> Recipe:
    if node.kind in ("base", "system", "runtime", "deps"):
        return {
            "base": build_base,
            "system": build_system,
            "runtime": build_runtime,
            "deps": build_deps,
        }[node.kind]
    if node.name == "tools.pip":
        return build_pip_tools
    if node.name == "tools.npm":
        return build_npm_tools
    if node.name.startswith("tools.bin."):
        return build_bin
    msg = f"{node.name}: no recipe builds nodes of kind {node.kind!r}; upgrade sandbox-builder"
    raise BuildError(msg)


def build(ctx: StepContext, node: NodeLock) -> StepResult:
    return recipe_for(node)(ctx, node)
