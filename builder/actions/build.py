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

import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.core import gitrepo
from builder.core.atomic import write_atomic
from builder.core.errors import LockError
from builder.core.keys import content_digest, sha256_of
from builder.core.layout import SBOM_FILE
from builder.core.platforms import host_platform
from builder.core.progress import Progress
from builder.engine.interface import Engine, in_step
from builder.image import assemble
from builder.image.annotations import config_labels, manifest_annotations
from builder.image.export import deps_mounts
from builder.image.loading import IMAGE_LABEL, load_image
from builder.image.profile import HISTORY, profile_layer
from builder.model import inherit
from builder.model.agents import agent_env
from builder.model.inputs import BaseInputs, SystemInputs
from builder.kinds import KINDS
from builder.model.lockfile import Lock, NodeLock, lock_path, read
from builder.model.spec import Spec
from builder.model.toolinputs import NpmToolsInputs
from builder.orchestrator.overlay import make_overlay, overlay_text, write_overlay
from builder.realize import history
from builder.realize.execute import BuildStatus, Executor, NodeOutcome, Remote
from builder.realize.plan import make_plan
from builder.store.cache import Cache, Layer, NodeEntry

if TYPE_CHECKING:
    from builder.publish.push import Pushed

LABEL_PREFIX = "dev.sandbox-builder"


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
    outcomes = executor.run(plan, jobs=jobs)
    entries = [o.entry for o in outcomes]
    image = platform_image(spec=spec, lock=lock, platform=platform, entries=entries, cache=cache)
    config, layers, tags = image.config, image.layers, image.tags
    with in_step("image"):
        engine_id = load_image(
            engine=engine(), cache=cache, config=config, layers=layers, tags=tags
        )
    ref = engine_id
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


def sbom_name(platform: str) -> str:
    """The host's SBOM is SBOM_FILE; another platform's names its arch (sbom.arm64.spdx.json)."""
    if platform == host_platform():
        return SBOM_FILE
    return SBOM_FILE.replace(".", f".{platform.split('/')[1]}.", 1)


@dataclass(frozen=True, kw_only=True)
class PlatformImage:
    """One platform's image: its config (hence its ID), its layers (the nodes', then the
    profile layer, image/profile.py) and its local tags."""

    platform: str
    config: assemble.ImageConfig
    layers: list[Layer]
    tags: list[str]
    nodes: Mapping[str, NodeLock]


def platform_image(
    *, spec: Spec, lock: Lock, platform: str, entries: list[NodeEntry], cache: Cache
) -> PlatformImage:
    """The image of `platform` stacking the built `entries` (the lock's nodes, in build order)."""
    nodes = lock.nodes(platform)
    env = assemble.compose_env(entries[0].env, [e.env for e in entries[1:]])
    npm = nodes["tools.npm"].inputs_as(NpmToolsInputs) if "tools.npm" in nodes else None
    env.update(agent_env(npm))  # pinned agent CLIs do not update themselves (model/agents.py)
    env.update(spec.image.env)
    # The SBOM comes from the lock alone, so its digest can label the image it describes.
    sbom_digest = write_sbom(lock, image=spec.image.name, platform=platform, cache=cache)
    lock_digest = sha256_of({name: node.key for name, node in sorted(nodes.items())})
    base_inputs = nodes["base"].inputs_as(BaseInputs)
    labels = {
        **config_labels(
            title=spec.image.name,
            lock_digest=lock_digest,
            epoch=lock.source_date_epoch,
            base=base_inputs,
        ),
        IMAGE_LABEL: lock_digest,
        **{f"{LABEL_PREFIX}.node.{e.name}": e.key for e in entries},
        f"{LABEL_PREFIX}.sbom": sbom_digest,
    }
    layers = [(e.name, layer) for e in entries for layer in e.layers]
    # On top: login shells' view of this Env (image/profile.py), a function of every node.
    layers.append((HISTORY, profile_layer(env, epoch=lock.source_date_epoch, cache=cache)))
    base = inherit.recorded_config(base_inputs)
    system = nodes["system"].inputs_as(SystemInputs)
    config = assemble.image_config(
        layers=layers,
        env=env,
        platform=platform,
        epoch=lock.source_date_epoch,
        user=inherit.effective_user(system, base),
        workdir=inherit.effective_workdir(system, base),
        labels=labels,
        base=base,
    )
    short = config.image_id.removeprefix("sha256:")[:12]
    latest = "latest" if platform == host_platform() else f"latest-{platform.split('/')[1]}"
    return PlatformImage(
        platform=platform,
        config=config,
        layers=[layer for _, layer in layers],
        tags=[f"{spec.image.name}:{short}", f"{spec.image.name}:{latest}"],
        nodes=nodes,
    )


def write_sbom(lock: Lock, *, image: str, platform: str, cache: Cache) -> str:
    """Write the SPDX SBOM of the build to cache/sbom.spdx.json; its `sha256:` digest.

    The document is a function of the lock's nodes, its epoch, the image name, the platform
    and the code of builder/sbom/, so a stamp of those beside it (with the file's digest)
    lets a build whose SBOM did not change, a no-op for one, skip making it again.
    """
    path = cache.root / sbom_name(platform)
    stamp_path = path.with_name(f"{path.name}.stamp")
    made_of = sha256_of(
        {
            "nodes": {name: node.key for name, node in sorted(lock.nodes(platform).items())},
            "epoch": lock.source_date_epoch,
            "image": image,
            "platform": platform,
            "code": _sbom_code(),
        }
    )
    try:
        stamp = json.loads(stamp_path.read_text())
        digest = content_digest(path.read_bytes())
        if stamp == {"made_of": made_of, "digest": digest}:
            return digest
    except (OSError, ValueError):
        pass  # no stamp or no file yet: make it
    from builder import sbom

    data = sbom.render(sbom.spdx_document(lock, image=image, platform=platform))
    digest = sbom.digest_of(data)
    sbom.write_sbom(data, path)
    write_atomic(stamp_path, json.dumps({"made_of": made_of, "digest": digest}).encode())
    return digest


def _sbom_code() -> str:
    """A digest of the modules that write the SBOM: changing them invalidates every stamp."""
    files = sorted((Path(__file__).parent.parent / "sbom").glob("*.py"))
    return sha256_of({f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files})
