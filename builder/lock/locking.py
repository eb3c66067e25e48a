"""`sandbox lock`: resolve a spec into a Lock, node by node, keeping what need not change.

Nodes are locked parents first. Each node's inputs record what the spec asked for
(`requested`); when that is unchanged since the old lock, the old pins are kept, so locking
twice gives the same bytes and a new package does not move the others. `update=[]`
re-resolves everything; `update=["jq"]` re-resolves what holds jq (a package, tool or runtime
name, or a node name), keeping every other pin. Resolvers that need the image's own tools
(apt, pip, npm) run in a container of the node's ancestors, built (or taken from the cache)
on the way.

Every platform of `[image].platforms` is locked on this machine, without emulation: the host's
platform first, then each other one with the host's containers of the same nodes as its
resolvers, told the target (apt: its architecture and its base's packages; pip: its wheel
tags; npm's package-lock already names every platform's optional packages). The host's pins
are locked even when the spec does not list its platform, for those containers, and not
written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from builder.core.errors import ResolutionError
from builder.core.keys import node_key
from builder.core.platforms import host_platform
from builder.core.progress import Progress
from builder.engine.interface import Engine, in_step
from builder.engine.step import StepContext
from builder.kinds import KINDS, build_graph
from builder.kinds.rules import runtime_version, upstream_version
from builder.lock.stager import Stager
from builder.model.graph import LayerGraph
from builder.model.lockfile import Lock, NodeLock
from builder.model.spec import Spec
from builder.store.cache import Cache


def lock_project(
    *,
    spec: Spec,
    old: Lock | None,
    update: list[str] | None,
    cache: Cache,
    engine: Callable[[], Engine],
    progress: Progress,
    stage: Stager,
) -> Lock:
    graph = build_graph(spec)
    platforms: dict[str, dict[str, NodeLock]] = {}
    epoch = 0
    host: _Locker | None = None
    for platform in [host_platform(), *sorted(set(spec.image.platforms) - {host_platform()})]:
        listed = platform in spec.image.platforms
        if host is not None:
            progress.say(f"  locking   {platform}, with {host.platform}'s resolvers")
        locker = _Locker(
            spec=spec,
            graph=graph,
            previous=dict(old.platforms.get(platform, {})) if old else {},
            update=update,
            cache=cache,
            engine=engine,
            progress=progress,
            stager=stage,
            platform=platform,
            host=host,
        )
        nodes = locker.lock_all()
        if host is None:
            host = locker
        if listed:
            platforms[platform] = nodes
            epoch = max(epoch, KINDS.epoch(nodes))
    return Lock(spec_hash=spec.spec_hash(), source_date_epoch=epoch, platforms=platforms)


@dataclass(kw_only=True)
class _Locker:
    """Locks the nodes of one platform, in graph order."""

    spec: Spec
    graph: LayerGraph
    previous: dict[str, NodeLock]
    update: list[str] | None
    cache: Cache
    engine: Callable[[], Engine]
    progress: Progress
    stager: Stager
    platform: str
    host: _Locker | None = None  # set when `platform` is not this machine's: its resolvers

    def __post_init__(self) -> None:
        self.nodes: dict[str, NodeLock] = {}

    def lock_all(self) -> dict[str, NodeLock]:
        for name in self.graph.names():
            kind = KINDS.of(name)
            parents = self.graph.parents(name)
            with in_step(f"lock {name}"):
                inputs = kind.lock(self, name)
            self.nodes[name] = NodeLock(
                name=name,
                kind=kind.stack,
                key=node_key(
                    recipe=kind.recipe,
                    inputs=inputs,
                    parents={p: self.nodes[p].key for p in parents},
                    platform=self.platform,
                ),
                parents=tuple(parents),
                inputs=inputs,
            )
        return self.nodes

    @property
    def foreign(self) -> bool:
        return self.host is not None

    # -- what to keep ------------------------------------------------------------------------

    def wanted(self, name: str, contents: list[str]) -> bool:
        """Whether `update` asks to re-resolve node `name` (holding `contents`)."""
        if self.update is None:
            return False
        return not self.update or name in self.update or any(c in self.update for c in contents)

    def kept(
        self, name: str, requested: Mapping[str, Any], contents: list[str]
    ) -> Mapping[str, Any] | None:
        """The old inputs of `name` if they answer the same request and no update asks."""
        old = self.previous.get(name)
        if old and old.inputs.get("requested") == requested and not self.wanted(name, contents):
            self.progress.say(f"  kept      {name}")
            return old.inputs
        return None

    # -- helpers -----------------------------------------------------------------------------

    def watch(self, name: str) -> AbstractContextManager[None]:
        """The heartbeat of the step resolving `name` in a container (its log's name)."""
        return self.progress.watch(name, [self.cache.log_path(name)])

    def same_as_host(self, runtime: str, version: str) -> None:
        """The host's `runtime` resolves for the target only when it is the same version."""
        if self.host is None:
            return
        here = self.host.runtime_version(runtime)
        if upstream_version(here) != upstream_version(version):
            msg = (
                f"{self.spec.path}: {self.platform} gets {runtime} {version} but this machine's "
                f"platform gets {here}, so its tools cannot be resolved here for "
                f"{self.platform}. Pin [runtimes].{runtime} to one exact version"
            )
            raise ResolutionError(msg)

    def runtime_version(self, runtime: str) -> str:
        return runtime_version(self.spec, self.nodes, runtime)

    def stage(self, names: list[str]) -> str:
        """The image of locked nodes `names` stacked (this machine's), building what the
        cache lacks."""
        if self.host is not None:
            return self.host.stage(names)
        return self.stager(self.nodes, names, platform=self.platform)

    def context(self, name: str) -> StepContext:
        """A step context whose stage for `name` is its (already locked) parents' stack, on
        this machine's platform (the host's resolvers resolve for a foreign one)."""
        if self.host is not None:
            return self.host.context(name)
        image = self.stage(self.graph.parents(name))
        return StepContext(
            cache=self.cache,
            engine=self.engine,
            platform=self.platform,
            epoch=KINDS.epoch(self.nodes),
            stage=lambda _: image,
            project_dir=self.spec.project_dir,
        )
