"""Content hashes: the cache key of every node (DESIGN.md §3).

A node's key is the sha256 of canonical JSON (sorted keys, no whitespace) of exactly:
- `recipe`: the recipe version of the node's kind (each kind's `recipe`, builder/kinds/),
- `inputs`: the node's locked inputs as written in sandbox.lock (versions, digests, hashes),
- `parents`: the keys of the nodes it is built on, by node name,
- `platform`: the target platform, e.g. "linux/amd64".
Nothing else: no timestamps, no paths of this machine. Changing what a recipe does, or what is
hashed, means bumping that kind's recipe version (its module says what each version changed),
which rebuilds every node of the kind. The versions a kind had before stay listed in its
`previous`, so a lock keyed with one is told apart from a hand-edited lock: `sandbox lock`
re-keys it and keeps every pin.

A kind that also keeps each of a node's layers under a key of its own, so a layer whose bytes
did not change is reused when the node's key moves, says in its module what that key hashes
(npm tools: `builder/kinds/npm/layers.py`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical_json(obj: Any) -> str:
    """`obj` as canonical JSON (sorted keys, no whitespace), non-ASCII text kept as it is:
    what node keys and `sha256_of` hash."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_bytes(obj: Any) -> bytes:
    """`obj` as canonical JSON bytes with non-ASCII text escaped (`\\u00e9`): the spelling of
    the documents whose bytes are hashed or compared as they are written (the spec hash,
    image configs, registry manifests and indexes, cache records). Their bytes are part of
    image IDs and the lock, so this is not `canonical_json(obj).encode()`."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def content_digest(data: bytes) -> str:
    """ "sha256:<hex>" of `data`: how every content hash is written."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_of(obj: Any) -> str:
    """ "sha256:<hex>" of the canonical JSON of `obj`."""
    return content_digest(canonical_json(obj).encode())


def node_key(
    *, recipe: str, inputs: Mapping[str, Any], parents: Mapping[str, str], platform: str
) -> str:
    """The key of a node whose kind's recipe version is `recipe`."""
    return sha256_of(
        {"recipe": recipe, "inputs": inputs, "parents": dict(parents), "platform": platform}
    )


def older_recipe(
    *,
    previous: tuple[str, ...],
    key: str,
    inputs: Mapping[str, Any],
    parents: Mapping[str, str],
    platform: str,
) -> str | None:
    """The earlier recipe version of `previous` that `key` was computed with, if any."""
    for recipe in previous:
        candidate = node_key(recipe=recipe, inputs=inputs, parents=parents, platform=platform)
        if candidate == key:
            return recipe
    return None
