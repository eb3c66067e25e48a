"""Publishing to `[image].registry`: the image by digest, and every node under its key.

Layers are pushed as gzip blobs (`builder/store/blobs.py`), compressed deterministically, once per
layer (the blob is kept in the cache), several layers at a time; the image config, written by
this tool, keeps the uncompressed diff IDs, so the image ID does not depend on compression.
The OCI manifest is serialized canonically: two machines that build the same lock (with the
same zlib) from the same commit push the same bytes, and `<registry>/<name>@sha256:...` names
the same image. Its annotations name that commit (builder/image/annotations.py), so another
commit of the same lock pushes another manifest of the same image (same config, same ID).

Each node goes to `<name>:node-sha256-<key hex>` as a small OCI artifact whose config is the
node's cache entry. It lives in the image's own repository, so the image's layers and the
nodes' are the same blobs and are uploaded once. A teammate's `build` with the same lock
fetches them (`RegistryCache.fetch`) instead of building; it reads gzip blobs and, from older
publishes, uncompressed ones. Blobs the registry already has are never uploaded again, and a
layer whose blob digest the cache already knows is not even compressed to find that out.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.core.errors import RegistryError
from builder.core.keys import canonical_bytes, content_digest
from builder.image.assemble import ImageConfig
from builder.model.lockfile import NodeLock
from builder.net.registry import Registry
from builder.store.blobs import (
    GZIP_LAYER,
    GZIP_LAYER_TYPES,
    TAR_LAYER_TYPES,
    Blob,
    BlobStore,
    gunzip_layer,
)
from builder.store.cache import Cache, Layer, NodeEntry

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = GZIP_LAYER
NODE_CONFIG = "application/vnd.sandbox-builder.node.v1+json"


@dataclass(frozen=True, kw_only=True)
class Pushed:
    ref: str  # <registry>/<name>@sha256:<manifest digest>
    digest: str
    uploaded: int  # blobs sent (the others were already there)
    size: int = 0  # of the manifest, in bytes (what an image index names with its digest)


def node_repo(image_name: str) -> str:
    return image_name


def node_tag(key: str) -> str:
    return "node-" + key.replace(":", "-")


def manifest(
    config_digest: str,
    config_size: int,
    config_type: str,
    layers: list[Blob],
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    """The OCI manifest, canonical JSON; `annotations` (builder/image/annotations.py) only
    when given, so a node's manifest stays a function of the node alone."""
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": config_type, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": LAYER, "digest": b.digest, "size": b.size} for b in layers],
    }
    if annotations:
        document["annotations"] = dict(annotations)
    return canonical_bytes(document)


class LayerPusher:
    """Pushes layers to one repository as gzip blobs, each at most once, `workers` at a time.

    A layer whose blob digest the cache's index knows is first looked up in the registry
    (HEAD): when it is there, nothing is compressed or sent. Otherwise the cached blob is
    sent, compressed first if the cache lacks it.
    """

    def __init__(
        self, registry: Registry, *, repo: str, cache: Cache, workers: int | None = None
    ) -> None:
        self._registry, self._repo, self._cache = registry, repo, cache
        self._store = BlobStore(cache.root)
        self._workers = workers or os.cpu_count() or 1
        self._blobs: dict[str, Blob] = {}  # diff ID -> its blob, in the registry
        self.uploaded = 0  # blobs sent (the others were already there)
        self.tagged: list[str] = []  # manifests put up through this pusher, in order
        self._counting = threading.Lock()

    def push(self, layers: Iterable[Layer]) -> list[Blob]:
        """The blobs of `layers` (in order), every one of them in the registry."""
        layers = list(layers)
        todo = [la for la in _unique(layers) if la.diff_id not in self._blobs]
        if todo:
            with ThreadPoolExecutor(max_workers=min(self._workers, len(todo))) as pool:
                list(pool.map(self._push_one, todo))  # re-raises the first failure
        return [self._blobs[la.diff_id] for la in layers]

    def _push_one(self, layer: Layer) -> None:
        blob = self._store.known(layer.diff_id)
        sent = False
        if blob is None or not self._registry.has_blob(self._repo, blob.digest):
            if blob is None or not self._store.path(blob.digest).exists():
                blob = self._store.compress(self._cache.layer_path(layer.diff_id), layer.diff_id)
            path = self._store.path(blob.digest)
            sent = self._registry.push_blob(self._repo, blob.digest, path)
        with self._counting:  # counted as each finishes: a failed publish says what got there
            self._blobs[blob.diff_id] = blob
            self.uploaded += sent


def push_image(
    registry: Registry,
    *,
    host: str,
    name: str,
    tags: list[str],
    config: ImageConfig,
    layers: list[Layer],
    cache: Cache,
    pusher: LayerPusher | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Pushed:
    """Push the image (layers, config, manifest under each tag); its reference by digest.

    `uploaded` counts only the blobs this call sent (not those `pusher` sent before).
    `annotations` go in the manifest (not the config: the image ID stays the lock's).
    """
    pusher = pusher or LayerPusher(registry, repo=name, cache=cache)
    before = pusher.uploaded
    blobs = pusher.push(layers)
    uploaded = pusher.uploaded - before
    work = cache.scratch("push-")
    try:
        config_file = work / "config.json"
        config_file.write_bytes(config.data)
        uploaded += registry.push_blob(name, config.image_id, config_file)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    body = manifest(config.image_id, len(config.data), IMAGE_CONFIG, blobs, annotations)
    digest = ""
    for tag in tags:
        digest = registry.put_manifest(name, tag, body, MANIFEST)
        pusher.tagged.append(f"{name}:{tag}")
    _verify(registry, name, digest)
    return Pushed(ref=f"{host}/{name}@{digest}", digest=digest, uploaded=uploaded, size=len(body))


def _verify(registry: Registry, repo: str, digest: str) -> None:
    """Read the pushed manifest back and check the registry has every blob it names, so a
    teammate who pulls it finds them all (the blobs went up first)."""
    found = registry.get_manifest(repo, digest, [MANIFEST])
    if found is None:
        msg = f"registry {registry.host} lost manifest {repo}@{digest} just after storing it"
        raise RegistryError(msg)
    document = json.loads(found[0])
    for blob in [document["config"], *document.get("layers", [])]:
        if not registry.has_blob(repo, blob["digest"]):
            msg = (
                f"registry {registry.host} lacks blob {blob['digest']} of the manifest "
                f"{repo}@{digest} it just stored. Run `sandbox publish` again"
            )
            raise RegistryError(msg)


def push_nodes(
    registry: Registry,
    *,
    name: str,
    nodes: Mapping[str, NodeLock],
    cache: Cache,
    pusher: LayerPusher | None = None,
) -> int:
    """Publish every node's layers under its key; returns how many blobs were uploaded."""
    repo = node_repo(name)
    pusher = pusher or LayerPusher(registry, repo=repo, cache=cache)
    before = pusher.uploaded
    missing: list[NodeEntry] = []
    for node in nodes.values():
        if registry.get_manifest(repo, node_tag(node.key), [MANIFEST]) is not None:
            continue
        entry = cache.entry(node.key)
        if entry is None:
            msg = f"{node.name} is not in the cache; run `sandbox build` before publishing"
            raise RegistryError(msg)
        missing.append(entry)
    pusher.push(la for entry in missing for la in entry.layers)  # all at once, in parallel
    uploaded = 0
    work = cache.scratch("push-nodes-")
    try:
        for entry in missing:
            blobs = pusher.push(entry.layers)  # known by now: no request
            data = canonical_bytes(entry.to_json())
            config_file = work / "entry.json"
            config_file.write_bytes(data)
            config_digest = content_digest(data)
            uploaded += registry.push_blob(repo, config_digest, config_file)
            body = manifest(config_digest, len(data), NODE_CONFIG, blobs)
            registry.put_manifest(repo, node_tag(entry.key), body, MANIFEST)
            pusher.tagged.append(f"{repo}:{node_tag(entry.key)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return uploaded + pusher.uploaded - before


class RegistryCache:
    """Nodes a teammate published, fetched into the local cache by key."""

    def __init__(self, registry: Registry, *, name: str, cache: Cache) -> None:
        self._registry = registry
        self._repo = node_repo(name)
        self._cache = cache
        self._store = BlobStore(cache.root)

    def fetch(self, node: NodeLock) -> NodeEntry | None:
        """The node's entry, its layers pulled and checked; None when nobody published it."""
        found = self._registry.get_manifest(self._repo, node_tag(node.key), [MANIFEST])
        if found is None:
            return None
        body, _, _ = found
        document = json.loads(body)
        work = self._cache.scratch("pull-")
        try:
            config_file = work / "entry.json"
            self._registry.pull_blob(self._repo, document["config"]["digest"], config_file)
            data = json.loads(config_file.read_text())
            entry = NodeEntry(
                name=node.name,
                key=node.key,
                layers=tuple(
                    Layer(diff_id=la["diff_id"], size=la["size"]) for la in data["layers"]
                ),
                env=data.get("env", {}),
                seconds=data.get("seconds", 0.0),
            )
            if data.get("key") != node.key:
                msg = f"{self._repo}:{node_tag(node.key)} holds another node ({data.get('key')})"
                raise RegistryError(msg)
            described = document.get("layers") or []
            if len(described) != len(entry.layers):
                msg = (
                    f"{self._repo}:{node_tag(node.key)} lists {len(described)} layer blobs for "
                    f"{len(entry.layers)} layers; publish that node again"
                )
                raise RegistryError(msg)
            for layer, blob in zip(entry.layers, described, strict=True):
                if not self._cache.layer_path(layer.diff_id).exists():
                    self._pull_layer(node, layer, blob, work)
            self._cache.put(entry)
            return entry
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _pull_layer(
        self, node: NodeLock, layer: Layer, blob: Mapping[str, Any], work: Path
    ) -> None:
        """Download one layer's blob, check it, and store the layer (uncompressed) in the cache.

        Which kind of blob it is comes from the manifest: gzip (what this tool pushes) or a
        plain tar (what it pushed before), whose digest is the diff ID itself.
        """
        media_type, digest = str(blob.get("mediaType", "")), str(blob.get("digest", ""))
        where = f"{self._repo}:{node_tag(node.key)}"
        tar = work / "layer.tar"
        if media_type in TAR_LAYER_TYPES:
            if digest != layer.diff_id:
                msg = f"{where} names blob {digest} for layer {layer.diff_id}; publish it again"
                raise RegistryError(msg)
            self._registry.pull_blob(self._repo, digest, tar)  # checks the digest
            self._cache.store_layer(tar, layer.diff_id)
            return
        if media_type not in GZIP_LAYER_TYPES:
            msg = (
                f"{where}: layer blob {digest} has media type {media_type!r}, which this tool "
                "cannot read (it reads gzip and plain tar); publish that node again with it"
            )
            raise RegistryError(msg)
        gz = work / "layer.tar.gz"
        self._registry.pull_blob(self._repo, digest, gz)  # checks the digest
        what = f"registry {self._registry.host}: blob {digest} of {where}"
        gunzip_layer(gz, tar, diff_id=layer.diff_id, size=layer.size, what=what)
        self._cache.store_layer(tar, layer.diff_id)
        # Kept, so publishing from this cache neither compresses nor uploads the layer.
        self._store.adopt(gz, Blob(diff_id=layer.diff_id, digest=digest, size=gz.stat().st_size))


def _unique(layers: Sequence[Layer]) -> list[Layer]:
    seen: dict[str, Layer] = {}
    for layer in layers:
        seen.setdefault(layer.diff_id, layer)
    return list(seen.values())


def publish(
    *,
    host: str | None,
    name: str,
    tags: list[str],
    config: ImageConfig,
    layers: list[Layer],
    nodes: Mapping[str, NodeLock],
    cache: Cache,
    annotations: Mapping[str, str] | None = None,
) -> Pushed:
    """Push every node under its key, then the image (its manifest carrying `annotations`);
    the image's reference by digest."""
    if not host:
        msg = 'nowhere to publish: set [image].registry in sandbox.toml (e.g. "127.0.0.1:5000")'
        raise RegistryError(msg)
    registry = Registry(host)
    pusher = LayerPusher(registry, repo=name, cache=cache)  # node_repo(name) is the same repo
    try:
        node_blobs = push_nodes(registry, name=name, nodes=nodes, cache=cache, pusher=pusher)
        pushed = push_image(
            registry,
            host=host,
            name=name,
            tags=tags,
            config=config,
            layers=layers,
            cache=cache,
            pusher=pusher,
            annotations=annotations,
        )
    except RegistryError as exc:  # say what did get there: the next publish sends the rest
        msg = f"{exc}\n{_so_far(pusher, len(nodes), tags)}"
        raise RegistryError(msg) from exc
    return Pushed(
        ref=pushed.ref,
        digest=pushed.digest,
        uploaded=pushed.uploaded + node_blobs,
        size=pushed.size,
    )


def _so_far(pusher: LayerPusher, nodes: int, tags: list[str]) -> str:
    """What a publish that stopped had put in the registry (blobs always before the
    manifests naming them, so no manifest there lacks one)."""
    node_tags = [t for t in pusher.tagged if ":node-" in t]
    image = "pushed" if len(pusher.tagged) > len(node_tags) else "not pushed"
    return (
        f"Before it stopped, this publish uploaded {pusher.uploaded} blobs and published "
        f"{len(node_tags)} of the nodes the registry lacked (of {nodes}); the image "
        f"({', '.join(tags)}) was {image}. Every manifest there has all its blobs. Run "
        "`sandbox publish` again when the registry is back: it uploads only what is missing"
    )
