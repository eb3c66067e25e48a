"""`sandbox build`: the lock's nodes built or reused, stacked into the image, overlay written.

Reads the lock, never the network for resolution. The image config comes from the lock and
the layers alone, so the image ID is known before Docker is asked anything: when the engine
already has it (a no-op rebuild) nothing is loaded.

`platform` builds another platform of the lock than the host's, its steps under QEMU user
emulation (`emulation.py`); host steps (runtime archives, binaries) need none. Such an image
is tagged `<name>:<key>` and `<name>:latest-<arch>` (`latest` stays the host's), and the
overlay is left as it is unless a push completes the lock's image index (`index.py`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.actions.phases import Phases
from builder.actions.platformimage import platform_image, sbom_name
from builder.core import gitrepo
from builder.core.errors import LockError
from builder.core.platforms import host_platform
from builder.core.progress import Progress
from builder.engine.interface import Engine, in_step
from builder.image.annotations import manifest_annotations
from builder.image.export import deps_mounts
from builder.image.loading import load_image
from builder.kinds import KINDS
from builder.kinds.base import held_images
from builder.model.lockfile import Lock, NodeLock, lock_path, read
from builder.model.spec import Spec
from builder.orchestrator.overlay import make_overlay, overlay_text, write_overlay
from builder.realize import history
from builder.realize.execute import BuildStatus, Executor, NodeOutcome, Remote
from builder.realize.plan import make_plan
from builder.store.cache import Cache, NodeEntry

if TYPE_CHECKING:
    from builder.publish.push import Pushed


@dataclass(frozen=True, kw_only=True)
class BuildResult:
    image_id: str  # the config digest: the image's identity in the lock and the team cache
    ref: str
    tags: list[str]
    nodes: list[NodeOutcome]
    overlay_path: Path
    # What a no-op replay (noop.py) needs: the files the build wrote or reused besides the
    # overlay (cache entries and layers, SBOM, history, exported trees), which must still be
    # as they were, and the overlay a plain build writes (the image pinned by its ID).
    files: tuple[Path, ...] = ()
    plain_overlay: str = ""
    engine_id: str = ""  # the engine's ID of it: the manifest digest on the containerd store
    phases: Phases = field(default_factory=Phases)  # besides the nodes: assembly, loads

    @property
    def local_ref(self) -> str:
        """What `docker run` accepts for the image on the engine that built it."""
        return self.engine_id or self.image_id

    def as_noop(self, overlay_path: Path) -> BuildResult:
        """This result as the next plain build reports it if nothing changed: every node
        cached, the image pinned by its ID in the overlay at `overlay_path`."""
        return replace(
            self,
            ref=self.local_ref,
            overlay_path=overlay_path,
            nodes=[replace(n, status=BuildStatus.CACHED, seconds=0.0) for n in self.nodes],
            phases=Phases(),
        )

    def to_json(self) -> dict[str, Any]:
        """The object `build --json` prints (DESIGN.md §12)."""
        return {
            "image": {
                "id": self.image_id,
                "engine_id": self.local_ref,
                "ref": self.ref,
                "tags": self.tags,
            },
            "nodes": [
                {
                    "name": n.name,
                    "key": n.key,
                    "status": n.status,
                    "seconds": n.seconds,
                    "layer": n.entry.layers[-1].diff_id if n.entry.layers else None,
                }
                for n in self.nodes
            ],
            "overlay": str(self.overlay_path),
            "phases": self.phases.to_json(),
        }

    def text(self) -> str:
        """What `build` prints on stdout without --json."""
        engine = "" if self.local_ref == self.image_id else f"  engine id: {self.local_ref}\n"
        return (
            f"image {self.image_id}\n{engine}  ref: {self.ref}\n  tags: {', '.join(self.tags)}\n"
            f"  overlay: {self.overlay_path}"
        )


def remote_for(spec: Spec, cache: Cache) -> Remote | None:
    """The team cache: nodes published to [image].registry, if one is set."""
    if not spec.image.registry:
        return None
    return _TeamCache(spec.image.registry, name=spec.image.name, cache=cache)


class _TeamCache:
    """`publish.RegistryCache`, made on the first node to fetch: a build with nothing to
    build (a no-op) never imports the registry client (urllib, ssl: 30 ms)."""

    def __init__(self, host: str, *, name: str, cache: Cache) -> None:
        self._host, self._name, self._cache = host, name, cache
        self._remote: Remote | None = None
        self._making = threading.Lock()  # nodes fetch from several build threads

    def fetch(self, node: NodeLock) -> NodeEntry | None:
        with self._making:
            if self._remote is None:
                from builder.net.registry import Registry
                from builder.publish.push import RegistryCache

                registry = Registry(self._host)
                self._remote = RegistryCache(registry, name=self._name, cache=self._cache)
        return self._remote.fetch(node)


def fresh_lock(spec: Spec) -> Lock:
    """The sandbox.lock beside `spec`, refused (exit 3) when missing or stale."""
    path = lock_path(spec.path)
    lock = read(path, KINDS)
    check_fresh(spec, lock, path)
    return lock


def check_fresh(spec: Spec, lock: Lock, lock_file: Path) -> None:
    if lock.spec_hash != spec.spec_hash():
        msg = (
            f"{lock_file} is stale: {spec.path} changed since it was locked "
            "(spec_hash differs). Run `sandbox lock`"
        )
        raise LockError(msg)
    missing = [p for p in spec.image.platforms if p not in lock.platforms]
    if missing:
        msg = (
            f"{lock_file} has no pins for {', '.join(missing)} of [image].platforms. "
            "Run `sandbox lock`"
        )
        raise LockError(msg)


def build_project(
    *,
    spec: Spec,
    lock: Lock,
    cache: Cache,
    engine: Callable[[], Engine],
    progress: Progress,
    jobs: int,
    overlay_path: Path,
    remote: Remote | None = None,
    push: bool = False,
    platform: str | None = None,
) -> BuildResult:
    platform = platform or host_platform()
    native = platform == host_platform()
    if not native:
        from builder.engine.emulation import require_emulation

        require_emulation(platform)
    nodes = lock.nodes(platform)
    plan = make_plan(nodes, cache.entry)
    executor = Executor(
        nodes=nodes,
        cache=cache,
        engine=engine,
        platform=platform,
        epoch=lock.source_date_epoch,
        progress=progress,
        project_dir=spec.project_dir,
        remote=remote,
    )
    started = time.monotonic()
    outcomes = executor.run(plan, jobs=jobs)
    built = time.monotonic()
    entries = [o.entry for o in outcomes]
    image = platform_image(spec=spec, lock=lock, platform=platform, entries=entries, cache=cache)
    config, layers, tags = image.config, image.layers, image.tags
    assembled = time.monotonic()
    with in_step("image"):
        loaded = load_image(
            engine=engine(),
            cache=cache,
            config=config,
            layers=layers,
            tags=tags,
            held=held_images(nodes),
        )
    engine_id = ref = loaded.engine_id
    phases = Phases.of(
        nodes=built - started,
        assemble=assembled - built,
        image=loaded,
        stages=executor.stage_loads,
    )
    write = native
    origin = gitrepo.origin(spec.project_dir) if push else None
    if push and len(lock.platforms) > 1:
        from builder.actions.index import publish_index

        published = publish_index(
            spec=spec, lock=lock, built=image, cache=cache, progress=progress, origin=origin
        )
        write = native or published.complete
        ref = published.ref if published.complete or not native else published.own_ref
    elif push:
        progress.say(f"  pushing   {spec.image.name} to {spec.image.registry} ...")
        from builder.publish.push import publish

        pushed = publish(
            host=spec.image.registry,
            name=spec.image.name,
            tags=[t.rsplit(":", 1)[1] for t in tags],
            config=config,
            layers=layers,
            nodes=nodes,
            cache=cache,
            annotations=manifest_annotations(config.labels, origin),
        )
        ref = pushed.ref
        progress.say(f"  pushed    {ref} ({pushed.uploaded} new blobs)")
        _attest(spec=spec, lock=lock, platform=platform, pushed=pushed, engine=engine, cache=cache)
        progress.say(f"  attested  {ref} (SLSA provenance, SPDX SBOM)")
    mounts = deps_mounts(deps=spec.deps, entries={o.name: o.entry for o in outcomes}, cache=cache)
    overlay = make_overlay(image_ref=ref, sandbox=spec.sandbox, deps_mounts=mounts)
    if write:
        write_overlay(overlay, overlay_path)
    else:
        progress.say(f"  overlay   {overlay_path} left as it was: this image is {platform}'s")
    if native:
        history.save(
            cache,
            spec.path,
            image_id=config.image_id,
            engine_id=engine_id,
            image_name=spec.image.name,
            nodes=nodes,
        )
    sbom_file = cache.root / sbom_name(platform)
    return BuildResult(
        image_id=config.image_id,
        ref=ref,
        tags=tags,
        nodes=outcomes,
        overlay_path=overlay_path,
        files=(
            *(path for e in entries for path in cache.entry_files(e)),
            cache.layer_path(layers[-1].diff_id),  # the profile layer
            sbom_file,
            sbom_file.with_name(f"{sbom_file.name}.stamp"),
            history.path_of(cache, spec.path),
            *(Path(mount.split(":", 1)[0]) for mount in mounts),
        ),
        plain_overlay=overlay_text(
            make_overlay(image_ref=engine_id, sandbox=spec.sandbox, deps_mounts=mounts)
        ),
        engine_id=engine_id,
        phases=phases,
    )


def _attest(
    *,
    spec: Spec,
    lock: Lock,
    platform: str,
    pushed: Pushed,
    engine: Callable[[], Engine],
    cache: Cache,
) -> None:
    """Attach the provenance and SBOM of the image just pushed (actions/attest.py)."""
    import os

    from builder.actions.attest import attest

    attest(
        host=str(spec.image.registry),
        name=spec.image.name,
        lock=lock,
        platform=platform,
        manifest_digest=pushed.digest,
        manifest_size=pushed.size,
        sbom=json.loads((cache.root / sbom_name(platform)).read_bytes()),
        engine=f"docker-api {engine().ping()}",
        environ=os.environ,
    )
