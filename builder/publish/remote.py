"""An image as a registry holds it, read without the engine: its config and its layer blobs.

`sandbox verify REF` compares a rebuild with what was pushed. The config comes first (its
digest is the image ID, its `rootfs.diff_ids` the layers); a layer's blob is fetched only
when the caller needs to list its files, so a verify that agrees downloads a few kilobytes.
An image index (a lock of several platforms) is followed to this machine's platform.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.core.errors import RegistryError
from builder.core.keys import content_digest
from builder.net.registry import Registry
from builder.resolve.base import INDEXES, MANIFESTS, split_ref


@dataclass(frozen=True, kw_only=True)
class RemoteImage:
    """One platform's image in a registry: `ref`, its config and its layer blobs' digests."""

    ref: str
    registry: Registry
    repo: str
    config: bytes
    blobs: tuple[str, ...]  # the manifest's layer digests, bottom first

    @property
    def image_id(self) -> str:
        return content_digest(self.config)

    @property
    def diff_ids(self) -> list[str]:
        return [str(d) for d in json.loads(self.config).get("rootfs", {}).get("diff_ids", [])]

    def layer(self, index: int, dest: Path) -> Path:
        """Download layer `index` (bottom first) to `dest`, checked against its digest."""
        self.registry.pull_blob(self.repo, self.blobs[index], dest)
        return dest


def open_remote(ref: str, *, platform: str, work: Path) -> RemoteImage:
    """The image `ref` (`host/repo:tag` or `host/repo@sha256:...`) names for `platform`."""
    host, repo, reference = split_ref(ref)
    registry = Registry(host)
    document = _manifest(registry, repo, reference, ref)
    if "manifests" in document:
        os_name, arch = platform.split("/")
        chosen = [
            m
            for m in document["manifests"]
            if (m.get("platform") or {}).get("os") == os_name
            and (m.get("platform") or {}).get("architecture") == arch
        ]
        if not chosen:
            msg = f"{ref} is an image index without a {platform} image; name that image's digest"
            raise RegistryError(msg)
        document = _manifest(registry, repo, str(chosen[0]["digest"]), ref)
    config_digest = str((document.get("config") or {}).get("digest") or "")
    if not config_digest:
        msg = f"{ref}: its manifest names no image config; it is not an image"
        raise RegistryError(msg)
    config_file = work / "config.json"
    registry.pull_blob(repo, config_digest, config_file)  # checks the digest
    return RemoteImage(
        ref=ref,
        registry=registry,
        repo=repo,
        config=config_file.read_bytes(),
        blobs=tuple(str(la["digest"]) for la in document.get("layers") or []),
    )


def _manifest(registry: Registry, repo: str, reference: str, ref: str) -> dict[str, Any]:
    found = registry.get_manifest(repo, reference, [*INDEXES, *MANIFESTS])
    if found is None:
        msg = f"registry {registry.host} has no {repo}:{reference} (from {ref}). Check the name"
        raise RegistryError(msg)
    document: dict[str, Any] = json.loads(found[0])
    return document
