"""Carrying out a BuildPlan: each node cached or built, independent nodes in parallel.

A node builds in a container of its ancestors' layers only (a "stage" image assembled from
the cache), so it sees exactly what it declared. A node whose kind needs no stage
(`Kind.needs_stage`: a runtime unpacked, npm tools assembled on the host) starts as soon as a
job slot is free, without waiting for its parents; the image stacks it where it always does.
Results land in the cache atomically: layers first, then the node's entry, so an interrupted
build leaves nothing half-written.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from builder.core.errors import RegistryError
from builder.core.progress import Progress
from builder.engine.interface import Engine, in_step
from builder.image import assemble
from builder.image.loading import STAGE_LABEL, STAGE_REPO, Loaded, load_image
from builder.model.lockfile import NodeLock, ancestors, stack
from builder.realize.plan import BuildPlan
from builder.realize.slots import Slots
from builder.store.cache import Cache, Layer, NodeEntry

if TYPE_CHECKING:
    from concurrent.futures import Future


class BuildStatus(StrEnum):
    """What became of a node in a build (printed, and in `build --json`, as its value)."""

    CACHED = "cached"  # its layers were in the cache
    PULLED = "pulled"  # a teammate published it (the team cache)
    BUILT = "built"  # its recipe ran here


@dataclass(frozen=True, kw_only=True)
class NodeOutcome:
    name: str
    key: str
    status: BuildStatus
    seconds: float
    entry: NodeEntry


class Remote(Protocol):
    """Where published nodes come from (publish.RegistryCache)."""

    def fetch(self, node: NodeLock) -> NodeEntry | None: ...


class Executor:
    """Builds the nodes of one platform of a lock, sharing one engine and cache."""

    def __init__(
        self,
        *,
        nodes: Mapping[str, NodeLock],
        cache: Cache,
        engine: Callable[[], Engine],
        platform: str,
        epoch: int,
        progress: Progress,
        project_dir: Path,
        remote: Remote | None = None,
    ) -> None:
        self._nodes = nodes
        self._remote = remote
        self._project_dir = project_dir
        self._cache = cache
        self._engine = engine
        self._platform = platform
        self._epoch = epoch
        self._progress = progress
        self._stage_lock = threading.Lock()
        self._slots: Slots | None = None  # while `run` builds
        self.stage_loads: list[Loaded] = []  # build environments loaded (for `build --json`)

    def run(self, plan: BuildPlan, *, jobs: int) -> list[NodeOutcome]:
        """Every node of the plan, in stack order; raises the first failure."""
        outcomes: dict[str, NodeOutcome] = {}
        for step in plan.steps:
            entry = step.entry
            if entry is not None:
                outcomes[step.node.name] = NodeOutcome(
                    name=step.node.name,
                    key=step.node.key,
                    status=BuildStatus.CACHED,
                    seconds=0.0,
                    entry=entry,
                )
                self._progress.done(step.node.name, BuildStatus.CACHED, 0.0, entry)
        pending = [s.node for s in plan.steps if s.node.name not in outcomes]
        if pending:
            from builder.kinds import KINDS  # only when something builds: a no-op never does

            early = {n.name for n in pending if not KINDS.of(n.name).needs_stage(n)}
            for node in pending:
                waits = [] if node.name in early else [p for p in node.parents if p not in outcomes]
                self._progress.queued(node.name, waits)
            self._build_all(pending, outcomes, early, jobs=jobs)
        return [outcomes[name] for name in stack(self._nodes) if name in outcomes]

    def _build_all(
        self,
        pending: list[NodeLock],
        outcomes: dict[str, NodeOutcome],
        early: set[str],
        *,
        jobs: int,
    ) -> None:
        """Build `pending`, each once its parents are done (those of `early`, which need no
        stage, at once), `jobs` at a time."""
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        slots = self._slots = Slots(jobs, done=outcomes)
        try:
            with ThreadPoolExecutor(max_workers=len(pending)) as pool:
                running: dict[Future[NodeOutcome], str] = {}
                while pending or running:
                    for node in list(pending):
                        if node.name in early or all(p in outcomes for p in node.parents):
                            pending.remove(node)
                            running[pool.submit(self._build_in_slot, node, slots)] = node.name
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        del running[future]
                        try:
                            outcome = future.result()  # re-raises the node's failure
                        except BaseException:
                            slots.stop()
                            raise
                        outcomes[outcome.name] = outcome
                        slots.finished(outcome.name)
        finally:
            self._slots = None

    def _build_in_slot(self, node: NodeLock, slots: Slots) -> NodeOutcome:
        with slots.slot():
            return self._build(node)

    def _build(self, node: NodeLock) -> NodeOutcome:
        started = time.monotonic()
        pulled = self._pull(node)
        if pulled is not None:
            seconds = round(time.monotonic() - started, 1)
            self._progress.done(node.name, BuildStatus.PULLED, seconds, pulled)
            return NodeOutcome(
                name=node.name,
                key=node.key,
                status=BuildStatus.PULLED,
                seconds=seconds,
                entry=pulled,
            )
        self._progress.start(node.name, log=self._cache.log_path(node.name))
        from builder.engine.step import StepContext
        from builder.kinds import KINDS  # only when something builds: a no-op never imports it

        ctx = StepContext(
            cache=self._cache,
            engine=self._engine,
            platform=self._platform,
            epoch=self._epoch,
            stage=self.stage_for,
            project_dir=self._project_dir,
            below=self.layers_below,
            say=self._progress.say,
        )
        try:
            with in_step(node.name):
                result = KINDS.of(node.name).build(ctx, node)
        except BaseException:
            self._progress.failed(node.name, time.monotonic() - started)
            raise
        seconds = round(time.monotonic() - started, 1)
        entry = NodeEntry(
            name=node.name,
            key=node.key,
            layers=tuple(Layer(diff_id=la.diff_id, size=la.size) for la in result.layers),
            env=result.env,
            seconds=seconds,
        )
        self._cache.put(entry)
        self._progress.done(node.name, BuildStatus.BUILT, seconds, entry)
        return NodeOutcome(
            name=node.name, key=node.key, status=BuildStatus.BUILT, seconds=seconds, entry=entry
        )

    def _pull(self, node: NodeLock) -> NodeEntry | None:
        """The node from the team cache, if a teammate published it; else build it here."""
        if self._remote is None:
            return None
        try:
            return self._remote.fetch(node)
        except RegistryError as exc:
            self._progress.say(f"  warning   {node.name}: team cache unusable ({exc}); building")
            return None

    def stage(self, names: list[str]) -> str:
        """The image ID of `names`' layers stacked, loaded into the engine if it lacks it."""
        entries = [self._entry(n) for n in stack({n: self._nodes[n] for n in names})]
        layers = [(e.name, layer) for e in entries for layer in e.layers]
        env = assemble.compose_env(entries[0].env, [e.env for e in entries[1:]])
        config = assemble.image_config(
            layers=layers,
            env=env,
            platform=self._platform,
            epoch=self._epoch,
            labels={STAGE_LABEL: "1"},
        )
        from builder.kinds.base import held_images  # only when something builds

        with self._stage_lock:
            loaded = load_image(
                engine=self._engine(),
                cache=self._cache,
                config=config,
                layers=[layer for _, layer in layers],
                tags=[f"{STAGE_REPO}:{config.image_id.removeprefix('sha256:')[:12]}"],
                held=held_images(self._nodes),
            )
            self.stage_loads.append(loaded)
        return config.image_id

    def stage_for(self, name: str) -> str:
        """The build environment of node `name`: its ancestors stacked (waited for, when
        `name` started before them)."""
        return self.stage(self._built_ancestors(name))

    def layers_below(self, name: str) -> list[Path]:
        """The layer tars of node `name`'s build environment, bottom first."""
        names = self._built_ancestors(name)
        entries = [self._entry(n) for n in stack({n: self._nodes[n] for n in names})]
        return [self._cache.layer_path(layer.diff_id) for e in entries for layer in e.layers]

    def _built_ancestors(self, name: str) -> list[str]:
        names = ancestors(self._nodes, name)
        if self._slots is not None:
            self._slots.wait_for(names, by=name)
        return names

    def _entry(self, name: str) -> NodeEntry:
        entry = self._cache.entry(self._nodes[name].key)
        assert entry is not None, f"{name} is not built yet"
        return entry
