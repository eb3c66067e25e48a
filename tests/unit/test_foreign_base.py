"""Another platform's `[base] image`: its own manifest, picked from an index in a registry.

The registry is Debian's `docker-registry` (tests/unit/registry_server.py), holding an OCI
index of two synthetic images and a single-platform image; no Docker engine is needed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.core.errors import ResolutionError
from builder.model.spec import BaseSpec
from builder.net.registry import Registry
from builder.resolve.base import host_repo, resolve_base, resolve_foreign_image, split_ref
from tests.unit.registry_server import RunningRegistry, run_registry

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path / "registry") as server:
        yield server


def _image(registry: Registry, tmp_path: Path, arch: str, tag: str = "") -> tuple[str, int]:
    """Push a manifest whose config says linux/`arch`; its digest and size."""
    config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers"}})
    path = tmp_path / f"config-{arch}.json"
    path.write_text(config)
    config_digest = f"sha256:{hashlib.sha256(config.encode()).hexdigest()}"
    registry.push_blob("base", config_digest, path)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()
    return registry.put_manifest("base", tag or arch, manifest, MANIFEST), len(manifest)


def _index(registry: Registry, tmp_path: Path, arches: list[str]) -> str:
    entries = []
    for arch in arches:
        digest, size = _image(registry, tmp_path, arch)
        platform = {"os": "linux", "architecture": arch}
        entries.append(
            {"mediaType": MANIFEST, "digest": digest, "size": size, "platform": platform}
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}).encode()
    return registry.put_manifest("base", "multi", index, INDEX)


def test_another_platform_pins_its_own_manifest_from_the_index(
    running: RunningRegistry, tmp_path: Path
) -> None:
    registry = Registry(running.host)
    _index(registry, tmp_path, ["amd64", "arm64"])
    arm64 = registry.get_manifest("base", "arm64", [MANIFEST])
    assert arm64 is not None
    found = resolve_foreign_image(f"{running.host}/base:multi", platform="linux/arm64")
    assert found == {
        "image": f"{running.host}/base:multi",
        "pinned": f"{running.host}/base@{arm64[2]}",
        "epoch": 0,
    }
    spec = BaseSpec(image=f"{running.host}/base:multi")
    again = resolve_base(spec, platform="linux/arm64", engine=None, foreign=True)
    assert again == found, "resolve_base needs no engine for another platform's image"


def test_an_index_without_the_platform_says_which_it_has(
    running: RunningRegistry, tmp_path: Path
) -> None:
    _index(Registry(running.host), tmp_path, ["amd64", "ppc64le"])
    with pytest.raises(
        ResolutionError, match=r"no linux/arm64 image \(it has linux/amd64, linux/ppc64le\)"
    ):
        resolve_foreign_image(f"{running.host}/base:multi", platform="linux/arm64")


def test_a_single_image_serves_only_its_own_platform(
    running: RunningRegistry, tmp_path: Path
) -> None:
    registry = Registry(running.host)
    digest, _ = _image(registry, tmp_path, "arm64", tag="only-arm64")
    found = resolve_foreign_image(f"{running.host}/base:only-arm64", platform="linux/arm64")
    assert found["pinned"] == f"{running.host}/base@{digest}"
    with pytest.raises(ResolutionError, match="is one image, for linux/arm64, not for linux/amd64"):
        resolve_foreign_image(f"{running.host}/base:only-arm64", platform="linux/amd64")
    with pytest.raises(ResolutionError, match="has no such manifest"):
        resolve_foreign_image(f"{running.host}/base:nope", platform="linux/arm64")


def test_a_local_image_cannot_be_another_platforms_base() -> None:
    with pytest.raises(ResolutionError, match="local image, which has this machine's platform"):
        resolve_foreign_image("sandbox-test/base:latest", platform="linux/arm64")


@pytest.mark.parametrize(
    ("ref", "split", "repo"),
    [
        ("127.0.0.1:5000/a/b:1.0", ("127.0.0.1:5000", "a/b", "1.0"), "127.0.0.1:5000/a/b"),
        ("127.0.0.1:5000/a/b", ("127.0.0.1:5000", "a/b", "latest"), "127.0.0.1:5000/a/b"),
        (
            "ghcr.io/o/i@sha256:" + "a" * 64,
            ("ghcr.io", "o/i", "sha256:" + "a" * 64),
            "ghcr.io/o/i",
        ),
        (
            "docker.io/debian:bookworm",
            ("registry-1.docker.io", "library/debian", "bookworm"),
            "docker.io/debian",
        ),
    ],
)
def test_references_split_into_host_repo_and_tag(
    ref: str, split: tuple[str, str, str], repo: str
) -> None:
    assert split_ref(ref) == split
    assert host_repo(ref) == repo
