"""Publishing to `[image].registry`: the image by digest, and every node under its key.

Everything is pushed as it sits in the cache: uncompressed normalized layers (their digest is
their diff ID) and the image config this tool wrote, in an OCI manifest serialized
canonically. So the manifest digest depends on the lock alone: two machines that build the
same lock push the same bytes, and `<registry>/<name>@sha256:...` names the same image.

Each node goes to `<name>:node-sha256-<key hex>` as a small OCI artifact whose config is the
node's cache entry. It lives in the image's own repository, so the image's layers and the
nodes' are the same blobs and are uploaded once. A teammate's `build` with the same lock
fetches them (`RegistryCache.fetch`) instead of building. Blobs the registry already has are
never uploaded again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass

from builder.assemble import ImageConfig
from builder.cache import Cache, Layer, NodeEntry
from builder.errors import RegistryError
from builder.lockfile import NodeLock
from builder.registry import Registry

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
NODE_CONFIG = "application/vnd.sandbox-builder.node.v1+json"


@dataclass(frozen=True, kw_only=True)
class Pushed:
    ref: str  # <registry>/<name>@sha256:<manifest digest>
    digest: str
    uploaded: int  # blobs sent (the others were already there)


def node_repo(image_name: str) -> str:
    return image_name


def node_tag(key: str) -> str:
    return "node-" + key.replace(":", "-")


def manifest(config_digest: str, config_size: int, config_type: str, layers: list[Layer]) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": config_type, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": LAYER, "digest": la.diff_id, "size": la.size} for la in layers],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def push_image(
    registry: Registry,
    *,
    host: str,
    name: str,
    tags: list[str],
    config: ImageConfig,
    layers: list[Layer],
    cache: Cache,
) -> Pushed:
    """Push the image (layers, config, manifest under each tag); its reference by digest."""
    uploaded = sum(
        registry.push_blob(name, la.diff_id, cache.layer_path(la.diff_id)) for la in _unique(layers)
    )
    work = cache.scratch("push-")
    try:
        config_file = work / "config.json"
        config_file.write_bytes(config.data)
        uploaded += registry.push_blob(name, config.image_id, config_file)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    body = manifest(config.image_id, len(config.data), IMAGE_CONFIG, layers)
    digest = ""
    for tag in tags:
        digest = registry.put_manifest(name, tag, body, MANIFEST)
    return Pushed(ref=f"{host}/{name}@{digest}", digest=digest, uploaded=uploaded)


def push_nodes(
    registry: Registry, *, name: str, nodes: Mapping[str, NodeLock], cache: Cache
) -> int:
    """Publish every node's layers under its key; returns how many blobs were uploaded."""
    repo = node_repo(name)
    uploaded = 0
    work = cache.scratch("push-nodes-")
    try:
        for node in nodes.values():
            if registry.get_manifest(repo, node_tag(node.key), [MANIFEST]) is not None:
                continue
            entry = cache.entry(node.key)
            if entry is None:
                msg = f"{node.name} is not in the cache; run `sandbox build` before publishing"
                raise RegistryError(msg)
            for layer in entry.layers:
                uploaded += registry.push_blob(repo, layer.diff_id, cache.layer_path(layer.diff_id))
            data = json.dumps(entry.to_json(), sort_keys=True, separators=(",", ":")).encode()
            config_file = work / "entry.json"
            config_file.write_bytes(data)
            config_digest = sha256_of_bytes(data)
            uploaded += registry.push_blob(repo, config_digest, config_file)
            body = manifest(config_digest, len(data), NODE_CONFIG, list(entry.layers))
            registry.put_manifest(repo, node_tag(node.key), body, MANIFEST)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return uploaded


class RegistryCache:
    """Nodes a teammate published, fetched into the local cache by key."""

    def __init__(self, registry: Registry, *, name: str, cache: Cache) -> None:
        self._registry = registry
        self._repo = node_repo(name)
        self._cache = cache

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
            for layer in entry.layers:
                if self._cache.layer_path(layer.diff_id).exists():
                    continue
                tar = work / "layer.tar"
                self._registry.pull_blob(self._repo, layer.diff_id, tar)  # checks the digest
                self._cache.store_layer(tar, layer.diff_id)
            self._cache.put(entry)
            return entry
        finally:
            shutil.rmtree(work, ignore_errors=True)


def sha256_of_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _unique(layers: list[Layer]) -> list[Layer]:
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
) -> Pushed:
    """Push every node under its key, then the image; the image's reference by digest."""
    if not host:
        msg = 'nowhere to publish: set [image].registry in sandbox.toml (e.g. "127.0.0.1:5000")'
        raise RegistryError(msg)
    registry = Registry(host)
    node_blobs = push_nodes(registry, name=name, nodes=nodes, cache=cache)
    pushed = push_image(
        registry, host=host, name=name, tags=tags, config=config, layers=layers, cache=cache
    )
    return Pushed(ref=pushed.ref, digest=pushed.digest, uploaded=pushed.uploaded + node_blobs)
