"""Publishing a lock of several platforms: each built platform's image, and one OCI index.

`publish` (`build --push`) of such a lock pushes every platform whose nodes are all in the
cache (built here, or pulled from the team cache), each with its nodes under their keys and
its manifest under its own `<key>` tag, then an image index naming each of them with its
platform, tagged `latest`: `docker pull` on either architecture takes its own image. The index
is canonical JSON sorted by platform, so two machines pushing the same images push the same
bytes. Only once the index names every platform of the lock does the overlay pin its digest;
until then the build says which platforms are missing and how to add them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from builder.actions.platformimage import PlatformImage, platform_image
from builder.core.errors import RegistryError
from builder.core.gitrepo import GitOrigin
from builder.core.keys import canonical_bytes
from builder.core.progress import Progress
from builder.image.annotations import manifest_annotations
from builder.model.lockfile import Lock, stack
from builder.model.spec import Spec
from builder.net.registry import Registry
from builder.publish.push import MANIFEST, LayerPusher, push_image, push_nodes
from builder.store.cache import Cache, NodeEntry

INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass(frozen=True, kw_only=True)
class PublishedIndex:
    ref: str  # <registry>/<name>@sha256:<index digest>
    own_ref: str  # the manifest of the platform just built
    platforms: tuple[str, ...]  # what the index names
    missing: tuple[str, ...]  # platforms of the lock not built here yet

    @property
    def complete(self) -> bool:
        return not self.missing


def built_image(*, spec: Spec, lock: Lock, platform: str, cache: Cache) -> PlatformImage | None:
    """`platform`'s image from the cache's entries, or None when a node of it is not built."""
    nodes = lock.nodes(platform)
    entries: list[NodeEntry] = []
    for name in stack(nodes):
        entry = cache.entry(nodes[name].key)
        if entry is None:
            return None
        entries.append(entry)
    return platform_image(spec=spec, lock=lock, platform=platform, entries=entries, cache=cache)


def index_document(
    manifests: list[tuple[str, str, int]], annotations: Mapping[str, str] | None = None
) -> bytes:
    """The image index of (platform, manifest digest, manifest size), sorted by platform,
    with `annotations` when given."""
    entries = []
    for platform, digest, size in sorted(manifests):
        os_name, arch = platform.split("/")
        entries.append(
            {
                "mediaType": MANIFEST,
                "digest": digest,
                "size": size,
                "platform": {"architecture": arch, "os": os_name},
            }
        )
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}
    if annotations:
        document["annotations"] = dict(annotations)
    return canonical_bytes(document)


def shared_annotations(each: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """What every platform's manifest annotates alike (title, created, source, revision; not
    the version, which is each platform's lock digest): the index's annotations."""
    if not each:
        return {}
    return {k: v for k, v in sorted(each[0].items()) if all(m.get(k) == v for m in each[1:])}


def publish_index(
    *,
    spec: Spec,
    lock: Lock,
    built: PlatformImage,
    cache: Cache,
    progress: Progress,
    origin: GitOrigin | None = None,
) -> PublishedIndex:
    """Push every built platform of `lock` (`built` just now), then their index; the
    manifests and the index are annotated (builder/image/annotations.py) with `origin`."""
    host, name = spec.image.registry, spec.image.name
    if not host:
        msg = 'nowhere to publish: set [image].registry in sandbox.toml (e.g. "127.0.0.1:5000")'
        raise RegistryError(msg)
    images = {built.platform: built}
    missing = []
    for platform in sorted(lock.platforms):
        if platform not in images:
            found = built_image(spec=spec, lock=lock, platform=platform, cache=cache)
            if found is None:
                missing.append(platform)
            else:
                images[platform] = found
    registry = Registry(host)
    pusher = LayerPusher(registry, repo=name, cache=cache)
    manifests, refs, annotated = [], {}, []
    for platform, image in sorted(images.items()):
        notes = manifest_annotations(image.config.labels, origin)
        annotated.append(notes)
        progress.say(f"  pushing   {name} ({platform}) to {host} ...")
        sent = push_nodes(registry, name=name, nodes=image.nodes, cache=cache, pusher=pusher)
        pushed = push_image(
            registry,
            host=host,
            name=name,
            tags=[image.tags[0].rsplit(":", 1)[1]],
            config=image.config,
            layers=image.layers,
            cache=cache,
            pusher=pusher,
            annotations=notes,
        )
        manifests.append((platform, pushed.digest, pushed.size))
        refs[platform] = pushed.ref
        progress.say(f"  pushed    {pushed.ref} ({pushed.uploaded + sent} new blobs)")
    document = index_document(manifests, shared_annotations(annotated))
    digest = registry.put_manifest(name, "latest", document, INDEX)
    ref = f"{host}/{name}@{digest}"
    progress.say(f"  pushed    {ref} (index of {', '.join(sorted(images))}), tag latest")
    if missing:
        todo = " and ".join(f"`sandbox build --platform {p} --push`" for p in missing)
        progress.say(
            f"  missing   {', '.join(missing)} from the index: the overlay pins it once "
            f"{todo} ran (here or on a machine sharing this registry)"
        )
    return PublishedIndex(
        ref=ref,
        own_ref=refs[built.platform],
        platforms=tuple(sorted(images)),
        missing=tuple(missing),
    )
