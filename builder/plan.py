"""Plan, then execute: what a build must do, decided from the lock and the cache alone.

`make_plan` is pure (no Docker, no network): each node of the platform is `cached` when the
cache lookup finds an entry for its key (the step keeps that entry, so the executor does not
read the cache again), else `build`. `stack` is the fixed order layers take in the
image (DESIGN.md §3): base, system, runtimes, tools, deps, each group sorted by name.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from builder.cache import NodeEntry
from builder.lockfile import NodeLock

_KIND_RANK = {"base": 0, "system": 1, "runtime": 2, "tools": 3, "deps": 4}


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


def stack_key(kind: str, name: str) -> tuple[int, str]:
    """Sort key of a node in the image's fixed layer order (the one definition of it)."""
    return _KIND_RANK[kind], name


def stack(nodes: Mapping[str, NodeLock]) -> list[str]:
    """Node names in image stack order, which is also a valid build order."""
    return sorted(nodes, key=lambda n: stack_key(nodes[n].kind, n))


def ancestors(nodes: Mapping[str, NodeLock], name: str) -> list[str]:
    """Every node `name` is built on, in stack order."""
    seen: set[str] = set()
    todo = list(nodes[name].parents)
    while todo:
        parent = todo.pop()
        if parent not in seen:
            seen.add(parent)
            todo.extend(nodes[parent].parents)
    return [n for n in stack(nodes) if n in seen]


def make_plan(
    nodes: Mapping[str, NodeLock], lookup: Callable[[str], NodeEntry | None]
) -> BuildPlan:
    """`lookup` maps a node key to its cache entry, or None (e.g. `Cache.entry`)."""
    steps = [Step(node=nodes[name], entry=lookup(nodes[name].key)) for name in stack(nodes)]
    return BuildPlan(steps=tuple(steps))
