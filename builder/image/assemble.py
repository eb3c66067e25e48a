"""An image from cached layers: its config (hence its ID) and the archive `docker load` takes.

The config is canonical JSON built only from the lock and the layers (created time = the lock's
source_date_epoch, fixed history), so the same lock gives the same image ID on any machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from builder.core.errors import CacheError
from builder.core.keys import canonical_bytes, content_digest
from builder.model.inherit import container_config
from builder.store.cache import Cache, Layer

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, kw_only=True)
class ImageConfig:
    """An image config and its ID (the sha256 of its bytes)."""

    data: bytes

    @property
    def image_id(self) -> str:
        return content_digest(self.data)

    @property
    def labels(self) -> dict[str, str]:
        return dict(json.loads(self.data)["config"].get("Labels") or {})


def image_config(
    *,
    layers: list[tuple[str, Layer]],
    env: Mapping[str, str],
    platform: str,
    epoch: int,
    user: str | None = None,
    workdir: str | None = None,
    labels: Mapping[str, str] | None = None,
    base: Mapping[str, Any] | None = None,
) -> ImageConfig:
    """The config of an image stacking `layers` (node name, layer) bottom first, on a base
    image whose config the lock recorded as `base` (builder/model/inherit.py: what it keeps)."""
    created = datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    os_name, arch = platform.split("/")
    config = container_config(
        base=base or {}, env=env, labels=labels or {}, user=user or "", workdir=workdir or ""
    )
    document = {
        "architecture": arch,
        "os": os_name,
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for _, layer in layers]},
        "history": [
            {"created": created, "created_by": f"sandbox-builder: {node}"} for node, _ in layers
        ],
    }
    return ImageConfig(data=canonical_bytes(document))


def archive_chunks(
    *,
    config: ImageConfig,
    layers: list[Layer],
    cache: Cache,
    tags: list[str],
    present: int = 0,
) -> Iterator[bytes]:
    """A `docker load` archive (docker save layout) of the image, as a stream of bytes: the
    layer tars are read from the cache as they are sent, never copied to disk first.

    The tars of the bottom `present` layers are left out: an engine that already holds them
    as one chain (docker 20.10 does, DESIGN.md §5) loads the rest on top without reading them.
    """
    hex_id = config.image_id.removeprefix("sha256:")
    names = [f"{layer.diff_id.removeprefix('sha256:')}/layer.tar" for layer in layers]
    manifest = [{"Config": f"{hex_id}.json", "RepoTags": tags, "Layers": names}]
    yield from _member(f"{hex_id}.json", config.data)
    sent = set()
    for layer, name in list(zip(layers, names, strict=True))[present:]:
        if name in sent:
            continue
        sent.add(name)
        path = cache.layer_path(layer.diff_id)
        digest = hashlib.sha256()
        with path.open("rb") as data:
            size = os.fstat(data.fileno()).st_size
            yield _header(name, size)
            while chunk := data.read(1 << 20):
                digest.update(chunk)
                yield chunk
        if f"sha256:{digest.hexdigest()}" != layer.diff_id:
            raise _corrupt(cache, layer.diff_id, f"sha256:{digest.hexdigest()}")
        yield bytes(-size % tarfile.BLOCKSIZE)
    yield from _member("manifest.json", json.dumps(manifest).encode())
    yield bytes(2 * tarfile.BLOCKSIZE)  # end of archive


def _corrupt(cache: Cache, diff_id: str, actual: str) -> CacheError:
    """A layer tar whose bytes no longer hash to its name: removed, so the node that made
    it rebuilds on the next build (the engine, which checks every layer, refuses it too)."""
    path = cache.layer_path(diff_id)
    cache.drop_layer(diff_id)
    return CacheError(
        f"cache layer {path} is corrupt: its bytes hash to {actual}, not to its name. It was "
        "removed and nothing was loaded; run the command again to rebuild the node it "
        "belongs to"
    )


def _member(name: str, data: bytes) -> Iterator[bytes]:
    yield _header(name, len(data))
    yield data + bytes(-len(data) % tarfile.BLOCKSIZE)


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(tarfile.PAX_FORMAT)


def compose_env(base_env: Mapping[str, str], node_envs: list[Mapping[str, str]]) -> dict[str, str]:
    """Env of the image: the base's, then each node's in stack order; PATH entries prepend."""
    env = dict(base_env)
    env.setdefault("PATH", DEFAULT_PATH)
    for node_env in node_envs:
        for key, value in node_env.items():
            if key == "PATH":
                env["PATH"] = f"{value}:{env['PATH']}"
            else:
                env[key] = value
    return env
