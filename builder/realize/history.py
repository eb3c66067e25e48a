"""The last successful build of each project using a cache dir.

`build --explain` and `status` compare a node's pins with the ones it had then, to say which
input changed; `gc` keeps every entry and image some project's last build still uses. One
small JSON file per project, named by a hash of the spec's absolute path, written atomically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.core.atomic import write_atomic
from builder.core.keys import canonical_bytes
from builder.core.layout import CACHE_BUILDS
from builder.model.lockfile import NodeLock
from builder.store.cache import Cache

RECORD_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class BuildRecord:
    spec: str
    image_id: str
    image_name: str
    engine_id: str = ""  # the engine's ID of the image where it is not image_id (containerd)
    nodes: Mapping[str, Mapping[str, Any]]  # name -> {key, parents, inputs}


def _folder(cache: Cache) -> Path:
    return cache.root / CACHE_BUILDS


def path_of(cache: Cache, spec_path: Path) -> Path:
    """Where the record of `spec_path`'s last build is kept."""
    digest = hashlib.sha256(str(spec_path.resolve()).encode()).hexdigest()[:16]
    return _folder(cache) / f"{digest}.json"


def save(
    cache: Cache,
    spec_path: Path,
    *,
    image_id: str,
    image_name: str,
    nodes: Mapping[str, NodeLock],
    engine_id: str = "",
) -> None:
    record = {
        "version": RECORD_VERSION,
        "spec": str(spec_path.resolve()),
        "image_id": image_id,
        **({"engine_id": engine_id} if engine_id and engine_id != image_id else {}),
        "image_name": image_name,
        "nodes": {
            name: {"key": n.key, "parents": list(n.parents), "inputs": n.inputs}
            for name, n in sorted(nodes.items())
        },
    }
    # Compact: json's C encoder (indenting takes the pure-Python one, 10x slower on a lock's
    # npm closures, and a no-op build saves this record every time).
    data = canonical_bytes(record)
    write_atomic(path_of(cache, spec_path), data)


def load(cache: Cache, spec_path: Path) -> BuildRecord | None:
    return _read(path_of(cache, spec_path))


def all_records(cache: Cache) -> list[BuildRecord]:
    folder = _folder(cache)
    if not folder.is_dir():
        return []
    found = [_read(path) for path in sorted(folder.glob("*.json"))]
    return [r for r in found if r is not None]


def _read(path: Path) -> BuildRecord | None:
    """A record, or None when there is none or it cannot be read (it is only advice)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != RECORD_VERSION:
        return None
    return BuildRecord(
        spec=data["spec"],
        image_id=data["image_id"],
        engine_id=data.get("engine_id") or data["image_id"],
        image_name=data["image_name"],
        nodes=data["nodes"],
    )
