"""The images lock is handed: locked nodes stacked, built (or taken from the cache) first.

Locking a node runs its resolver in a container of the nodes below it, which are locked by
then but may not be built. `Stages` is the `lock.locking.Stager` the commands hand to lock
and outdated: it builds what the cache lacks, one node at a time, as a build would (the same
keys, so a later `sandbox build` finds them cached), and returns the stacked image's ID.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.core.progress import Progress
from builder.engine.interface import Engine
from builder.kinds import KINDS
from builder.model.lockfile import NodeLock, ancestors
from builder.realize.execute import Executor
from builder.realize.plan import make_plan
from builder.store.cache import Cache


@dataclass(frozen=True, kw_only=True)
class Stages:
    cache: Cache
    engine: Callable[[], Engine]
    progress: Progress
    project_dir: Path  # the folder holding sandbox.toml

    def __call__(
        self, nodes: Mapping[str, NodeLock], names: Sequence[str], *, platform: str
    ) -> str:
        """The image of `nodes`' `names` and everything below them, stacked."""
        needed = set(names)
        for name in names:
            needed.update(ancestors(nodes, name))
        wanted = {n: nodes[n] for n in needed}
        executor = Executor(
            nodes=wanted,
            cache=self.cache,
            engine=self.engine,
            platform=platform,
            epoch=KINDS.epoch(nodes),
            progress=self.progress,
            project_dir=self.project_dir,
        )
        executor.run(make_plan(wanted, self.cache.entry), jobs=1)
        return executor.stage(sorted(needed))
