"""Publishing gzip layer blobs and pulling nodes back (builder/publish/push.py), on a real registry.

The registry is Debian's `docker-registry` (tests/unit/registry_server.py); the layers are
small synthetic tars in a real cache dir. No Docker engine is needed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from builder.core.errors import RegistryError
from builder.core.keys import content_digest as sha256_of_bytes
from builder.image.assemble import image_config
from builder.model.lockfile import NodeKind, NodeLock
from builder.net.registry import Registry
from builder.publish import push as publish_module
from builder.publish.push import (
    MANIFEST,
    NODE_CONFIG,
    RegistryCache,
    node_tag,
    push_nodes,
)
from builder.store.blobs import BlobStore
from builder.store.cache import Cache, Layer, NodeEntry
from tests.unit.registry_server import RunningRegistry, run_registry
from tests.unit.test_blobs import layer_tar

REPO = "team/sandbox"
GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
TAR = "application/vnd.oci.image.layer.v1.tar"


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path / "registry") as server:
        yield server


def a_cache(folder: Path) -> Cache:
    """A cache on a machine of its own: its user-wide node store is its own too."""
    cache = Cache(folder, downloads=folder / "downloads", store=folder / "store")
    cache.ensure()
    return cache


def with_node(cache: Cache, tar: Path, diff_id: str, name: str = "runtime.node") -> NodeLock:
    """`cache` holding a built node whose one layer is `tar`; the node's lock entry."""
    dest = cache.layer_path(diff_id)
    dest.write_bytes(tar.read_bytes())
    key = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
    layer = Layer(diff_id=diff_id, size=dest.stat().st_size)
    cache.put(NodeEntry(name=name, key=key, layers=(layer,), env={"PATH": "/opt/x"}))
    return NodeLock(name=name, kind=NodeKind.RUNTIME, key=key, parents=(), inputs={})


def publish_one(
    running: RunningRegistry,
    cache: Cache,
    node: NodeLock,
    annotations: dict[str, str] | None = None,
) -> publish_module.Pushed:
    entry = cache.entry(node.key)
    assert entry is not None
    config = image_config(
        layers=[(node.name, la) for la in entry.layers], env={}, platform="linux/amd64", epoch=0
    )
    return publish_module.publish(
        host=running.host,
        name=REPO,
        tags=["latest"],
        config=config,
        layers=list(entry.layers),
        nodes={node.name: node},
        cache=cache,
        annotations=annotations,
    )


def manifest_of(registry: Registry, reference: str) -> dict[str, Any]:
    found = registry.get_manifest(REPO, reference, [MANIFEST])
    assert found is not None
    return cast(dict[str, Any], json.loads(found[0]))


def test_layers_are_pushed_as_gzip_and_the_config_keeps_diff_ids(
    running: RunningRegistry, tmp_path: Path
) -> None:
    tar, diff_id = layer_tar(tmp_path / "src")
    cache = a_cache(tmp_path / "cache")
    pushed = publish_one(running, cache, with_node(cache, tar, diff_id))
    registry = Registry(running.host)
    document = manifest_of(registry, pushed.digest)
    [described] = document["layers"]
    assert described["mediaType"] == GZIP
    blob = tmp_path / "blob"
    registry.pull_blob(REPO, described["digest"], blob)
    assert blob.stat().st_size == described["size"] < tar.stat().st_size
    assert gzip.decompress(blob.read_bytes()) == tar.read_bytes()
    config = tmp_path / "config"
    registry.pull_blob(REPO, document["config"]["digest"], config)
    assert json.loads(config.read_text())["rootfs"]["diff_ids"] == [diff_id]
    assert pushed.uploaded == 3  # the layer (once for node and image), two configs


def test_the_image_manifest_carries_the_annotations_and_a_nodes_does_not(
    running: RunningRegistry, tmp_path: Path
) -> None:
    tar, diff_id = layer_tar(tmp_path / "src")
    cache = a_cache(tmp_path / "cache")
    node = with_node(cache, tar, diff_id)
    notes = {"org.opencontainers.image.revision": "f" * 40}

    pushed = publish_one(running, cache, node, annotations=notes)

    registry = Registry(running.host)
    assert manifest_of(registry, pushed.digest)["annotations"] == notes
    assert "annotations" not in manifest_of(registry, node_tag(node.key))
    plain = publish_one(running, cache, node)
    assert plain.digest != pushed.digest, "same image, another manifest"
    assert (
        manifest_of(registry, plain.digest)["config"]
        == manifest_of(registry, pushed.digest)["config"]
    )


def test_publishing_the_same_layers_from_another_cache_uploads_nothing(
    running: RunningRegistry, tmp_path: Path
) -> None:
    tar, diff_id = layer_tar(tmp_path / "src")
    first_cache = a_cache(tmp_path / "one")
    first = publish_one(running, first_cache, with_node(first_cache, tar, diff_id))
    second_cache = a_cache(tmp_path / "two")
    second = publish_one(running, second_cache, with_node(second_cache, tar, diff_id))
    assert second.uploaded == 0
    assert second.digest == first.digest
    assert BlobStore(second_cache.root).known(diff_id) == BlobStore(first_cache.root).known(diff_id)


def test_republishing_from_a_cache_does_not_compress_again(
    running: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tar, diff_id = layer_tar(tmp_path / "src")
    cache = a_cache(tmp_path / "cache")
    node = with_node(cache, tar, diff_id)
    first = publish_one(running, cache, node)

    def no_compression(self: BlobStore, layer: Path, diff_id: str) -> None:
        msg = f"{layer} was compressed again"
        raise AssertionError(msg)

    monkeypatch.setattr(BlobStore, "compress", no_compression)
    with run_registry(tmp_path / "elsewhere") as other:  # it lacks every blob
        elsewhere = publish_one(other, cache, node)
    assert elsewhere.uploaded == 3
    assert elsewhere.digest == first.digest
    # The index knows the blob's digest and the registry has it: the blob file is not needed.
    blob = BlobStore(cache.root).known(diff_id)
    assert blob is not None
    BlobStore(cache.root).path(blob.digest).unlink()
    assert publish_one(running, cache, node).uploaded == 0


def test_a_teammate_pulls_a_gzip_node_into_the_cache(
    running: RunningRegistry, tmp_path: Path
) -> None:
    tar, diff_id = layer_tar(tmp_path / "src")
    publisher = a_cache(tmp_path / "publisher")
    node = with_node(publisher, tar, diff_id)
    registry = Registry(running.host)
    assert push_nodes(registry, name=REPO, nodes={node.name: node}, cache=publisher) == 2
    teammate = a_cache(tmp_path / "teammate")
    entry = RegistryCache(registry, name=REPO, cache=teammate).fetch(node)
    assert entry == publisher.entry(node.key)
    assert teammate.entry(node.key) == entry
    assert teammate.layer_path(diff_id).read_bytes() == tar.read_bytes()
    # The pulled blob is kept: publishing from the teammate's cache compresses nothing.
    assert BlobStore(teammate.root).known(diff_id) == BlobStore(publisher.root).known(diff_id)
    assert not list((teammate.root / "tmp").iterdir())


def push_node_by_hand(
    registry: Registry, node: NodeLock, entry: NodeEntry, layer: tuple[Path, str, str], work: Path
) -> None:
    """Publish `node` the way another (or an older) publisher did: `layer` is (file, digest,
    media type) of its one blob."""
    path, digest, media_type = layer
    registry.push_blob(REPO, digest, path)
    data = json.dumps(entry.to_json(), sort_keys=True, separators=(",", ":")).encode()
    config = work / "entry.json"
    config.write_bytes(data)
    registry.push_blob(REPO, sha256_of_bytes(data), config)
    document = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": NODE_CONFIG, "digest": sha256_of_bytes(data), "size": len(data)},
        "layers": [{"mediaType": media_type, "digest": digest, "size": path.stat().st_size}],
    }
    registry.put_manifest(REPO, node_tag(node.key), json.dumps(document).encode(), MANIFEST)


def test_a_node_published_uncompressed_by_an_older_version_is_pulled(
    running: RunningRegistry, tmp_path: Path
) -> None:
    tar, diff_id = layer_tar(tmp_path / "src")
    publisher = a_cache(tmp_path / "publisher")
    node = with_node(publisher, tar, diff_id)
    entry = publisher.entry(node.key)
    assert entry is not None
    registry = Registry(running.host)
    push_node_by_hand(registry, node, entry, (tar, diff_id, TAR), tmp_path)
    teammate = a_cache(tmp_path / "teammate")
    assert RegistryCache(registry, name=REPO, cache=teammate).fetch(node) == entry
    assert teammate.layer_path(diff_id).read_bytes() == tar.read_bytes()


@pytest.mark.parametrize("case", ["other data", "zstd"])
def test_a_node_whose_blob_is_not_its_layer_is_refused_and_nothing_is_kept(
    running: RunningRegistry, tmp_path: Path, case: str
) -> None:
    tar, diff_id = layer_tar(tmp_path / "src")
    other, _ = layer_tar(tmp_path / "src", seed="b")
    publisher = a_cache(tmp_path / "publisher")
    node = with_node(publisher, tar, diff_id)
    entry = publisher.entry(node.key)
    assert entry is not None
    blob = tmp_path / "blob"
    blob.write_bytes(gzip.compress(other.read_bytes()))
    media_type = GZIP if case == "other data" else "application/vnd.oci.image.layer.v1.tar+zstd"
    digest = sha256_of_bytes(blob.read_bytes())
    registry = Registry(running.host)
    push_node_by_hand(registry, node, entry, (blob, digest, media_type), tmp_path)
    teammate = a_cache(tmp_path / "teammate")
    message = "does not decompress to layer" if case == "other data" else "cannot read"
    with pytest.raises(RegistryError, match=message):
        RegistryCache(registry, name=REPO, cache=teammate).fetch(node)
    assert teammate.entry(node.key) is None
    assert not teammate.layer_path(diff_id).exists()
    assert BlobStore(teammate.root).known(diff_id) is None
