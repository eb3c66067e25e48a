"""Dependency layers from a project's own lockfile (pnpm, npm, pip, uv). Not built yet."""

from __future__ import annotations

from builder.errors import BuildError
from builder.lockfile import NodeLock
from builder.recipes.common import StepContext, StepResult


def build_deps(ctx: StepContext, node: NodeLock) -> StepResult:
    msg = f"{node.name}: building deps layers is not implemented yet"
    raise BuildError(msg)
