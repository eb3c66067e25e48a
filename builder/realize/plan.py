"""Plan, then execute: what a build must do, decided from the lock and the cache alone.

`make_plan` is pure (no Docker, no network): each node of the platform is `cached` when the
cache lookup finds an entry for its key (the step keeps that entry, so the executor does not
read the cache again), else `build`, in the lock's stack order (`model.lockfile.stack`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from builder.model.lockfile import NodeLock, stack
from builder.store.cache import NodeEntry


class Action(enum.Enum):
    CACHED = "cached"
    BUILD = "build"


@dataclass(frozen=True, kw_only=True)
class Step:
    node: NodeLock
    entry: NodeEntry | None = None  # the cache entry reused when the step is cached

    @property
    def action(self) -> Action:
        return Action.BUILD if self.entry is None else Action.CACHED


@dataclass(frozen=True, kw_only=True)
class BuildPlan:
    steps: tuple[Step, ...]  # parents before children, in stack order

    def to_build(self) -> list[str]:
        return [s.node.name for s in self.steps if s.action is Action.BUILD]


def make_plan(
    nodes: Mapping[str, NodeLock], lookup: Callable[[str], NodeEntry | None]
) -> BuildPlan:
    """`lookup` maps a node key to its cache entry, or None (e.g. `Cache.entry`)."""
    steps = [Step(node=nodes[name], entry=lookup(nodes[name].key)) for name in stack(nodes)]
    return BuildPlan(steps=tuple(steps))
