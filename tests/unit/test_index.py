"""Publishing a lock of two platforms as one OCI index (actions/index.py), on a real registry.

The registry is Debian's `docker-registry`; each platform's one node is a small synthetic
layer in a real cache dir, so no Docker engine is needed.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.actions.index import INDEX, PublishedIndex, built_image, publish_index
from builder.core.gitrepo import GitOrigin
from builder.core.progress import Progress
from builder.image.profile import PROFILE, profile_script
from builder.model.lockfile import Lock, NodeKind, NodeLock
from builder.model.spec import BaseSpec, ImageSpec, Spec
from builder.net.registry import Registry
from builder.publish.push import MANIFEST
from builder.store.cache import Cache, Layer, NodeEntry
from tests.unit.registry_server import RunningRegistry, run_registry
from tests.unit.test_blobs import layer_tar

PLATFORMS = ("linux/amd64", "linux/arm64")


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path / "registry") as server:
        yield server


def _lock() -> Lock:
    """A base and a system node per platform, each its own key."""
    platforms = {}
    for platform in PLATFORMS:
        key = "sha256:" + hashlib.sha256(platform.encode()).hexdigest()
        inputs = {"image": "debian:bookworm", "pinned": f"sha256:{'0' * 64}", "epoch": 0}
        node = NodeLock(name="base", kind=NodeKind.BASE, key=key, parents=(), inputs=inputs)
        system = NodeLock(
            name="system",
            kind=NodeKind.SYSTEM,
            key="sha256:" + hashlib.sha256(f"system {platform}".encode()).hexdigest(),
            parents=("base",),
            inputs={
                "request": [],
                "user": "agent",
                "uid": 1000,
                "workdir": "/workspace",
                "packages": [],
            },
        )
        platforms[platform] = {"base": node, "system": system}
    return Lock(spec_hash="sha256:x", source_date_epoch=0, platforms=platforms)


def _spec(host: str) -> Spec:
    return Spec(
        path=Path("/p/sandbox.toml"),
        image=ImageSpec(name="team/multi", registry=host, platforms=PLATFORMS),
        base=BaseSpec(image="debian:bookworm"),
    )


def _build(cache: Cache, lock: Lock, platform: str, tmp_path: Path) -> None:
    """Put `platform`'s node in the cache, as a build does."""
    tar, diff_id = layer_tar(tmp_path / "layers", seed=platform.split("/")[1], size=4096)
    cache.layer_path(diff_id).write_bytes(tar.read_bytes())
    layer = Layer(diff_id=diff_id, size=tar.stat().st_size)
    for name, node in lock.nodes(platform).items():
        layers = (layer,) if name == "base" else ()
        cache.put(NodeEntry(name=name, key=node.key, layers=layers, env={}))


def _publish(
    spec: Spec, lock: Lock, cache: Cache, platform: str, origin: GitOrigin | None = None
) -> PublishedIndex:
    image = built_image(spec=spec, lock=lock, platform=platform, cache=cache)
    assert image is not None
    return publish_index(
        spec=spec, lock=lock, built=image, cache=cache, progress=Progress(), origin=origin
    )


def test_the_index_names_each_built_platform_and_says_which_are_missing(
    running: RunningRegistry, tmp_path: Path
) -> None:
    cache = Cache(tmp_path / "cache", downloads=tmp_path / "dl", store=tmp_path / "store")
    cache.ensure()
    spec, lock = _spec(running.host), _lock()
    _build(cache, lock, "linux/amd64", tmp_path)
    assert built_image(spec=spec, lock=lock, platform="linux/arm64", cache=cache) is None

    first = _publish(spec, lock, cache, "linux/amd64")
    assert first.missing == ("linux/arm64",)
    assert not first.complete

    _build(cache, lock, "linux/arm64", tmp_path)
    second = _publish(spec, lock, cache, "linux/arm64")
    assert second.complete
    assert second.platforms == PLATFORMS

    registry = Registry(running.host)
    found = registry.get_manifest("team/multi", "latest", [INDEX, MANIFEST])
    assert found is not None
    body, media_type, digest = found
    assert media_type == INDEX
    assert second.ref == f"{running.host}/team/multi@{digest}"
    index = json.loads(body)
    archs = [m["platform"]["architecture"] for m in index["manifests"]]
    assert archs == ["amd64", "arm64"]
    for entry in index["manifests"]:
        manifest = registry.get_manifest("team/multi", entry["digest"], [MANIFEST])
        assert manifest is not None
        assert len(manifest[0]) == entry["size"]
        config = json.loads(manifest[0])["config"]
        assert config["mediaType"] == "application/vnd.oci.image.config.v1+json"


def test_each_published_platform_ends_with_the_profile_layer_of_its_env(
    running: RunningRegistry, tmp_path: Path
) -> None:
    """What a pull gets: login shells of the pulled image see its Env (image/profile.py)."""
    cache = Cache(tmp_path / "cache", downloads=tmp_path / "dl", store=tmp_path / "store")
    cache.ensure()
    spec, lock = _spec(running.host), _lock()
    for platform in PLATFORMS:
        _build(cache, lock, platform, tmp_path)
    _publish(spec, lock, cache, "linux/arm64")

    registry = Registry(running.host)
    for platform in PLATFORMS:
        image = built_image(spec=spec, lock=lock, platform=platform, cache=cache)
        assert image is not None
        manifest = registry.get_manifest("team/multi", image.tags[0].rsplit(":", 1)[1], [MANIFEST])
        assert manifest is not None
        top = json.loads(manifest[0])["layers"][-1]
        blob = tmp_path / f"top-{platform.split('/')[1]}"
        registry.pull_blob("team/multi", top["digest"], blob)
        with tarfile.open(blob) as tar:
            script = tar.extractfile(PROFILE)
            assert script is not None
            env = json.loads(image.config.data)["config"]["Env"]
            assert script.read() == profile_script(dict(e.split("=", 1) for e in env))


def test_the_manifests_and_index_name_the_commit_and_the_configs_do_not(
    running: RunningRegistry, tmp_path: Path
) -> None:
    """The commit goes where it does not change the image ID: the manifests and the index."""
    cache = Cache(tmp_path / "cache", downloads=tmp_path / "dl", store=tmp_path / "store")
    cache.ensure()
    spec, lock = _spec(running.host), _lock()
    for platform in PLATFORMS:
        _build(cache, lock, platform, tmp_path)
    ids = {p: built_image(spec=spec, lock=lock, platform=p, cache=cache) for p in PLATFORMS}
    origin = GitOrigin(revision="e" * 40, source="https://git.example.com/acme/multi")

    _publish(spec, lock, cache, "linux/amd64", origin)

    registry = Registry(running.host)
    found = registry.get_manifest("team/multi", "latest", [INDEX])
    assert found is not None
    index = json.loads(found[0])
    p = "org.opencontainers.image."
    assert index["annotations"] == {
        f"{p}base.digest": f"sha256:{'0' * 64}",
        f"{p}base.name": "debian:bookworm",
        f"{p}created": "1970-01-01T00:00:00Z",
        f"{p}revision": "e" * 40,
        f"{p}source": "https://git.example.com/acme/multi",
        f"{p}title": "team/multi",
    }, "each platform's version differs: not the index's"
    versions = set()
    for entry in index["manifests"]:
        manifest = registry.get_manifest("team/multi", entry["digest"], [MANIFEST])
        assert manifest is not None
        document = json.loads(manifest[0])
        assert document["annotations"][f"{p}revision"] == "e" * 40
        versions.add(document["annotations"][f"{p}version"])
        image = ids[f"linux/{entry['platform']['architecture']}"]
        assert image is not None
        assert document["config"]["digest"] == image.config.image_id  # what the ID hashes
        labels = image.config.labels
        assert f"{p}version" in labels
        assert f"{p}revision" not in labels
        assert f"{p}source" not in labels
    assert len(versions) == 2
