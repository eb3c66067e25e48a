"""Content hashes: the cache key of every node (DESIGN.md §3).

A node's key is the sha256 of canonical JSON (sorted keys, no whitespace) of exactly:
- `recipe`: the recipe version of the node's kind (RECIPES below),
- `inputs`: the node's locked inputs as written in sandbox.lock (versions, digests, hashes),
- `parents`: the keys of the nodes it is built on, by node name,
- `platform`: the target platform, e.g. "linux/amd64".
Nothing else: no timestamps, no paths of this machine. Changing what a recipe does, or what is
hashed, means bumping that kind's recipe version here, which rebuilds every node of the kind.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# Bump a kind's version whenever its build step changes what lands in the layer.
RECIPES = {
    "base": "base/1",
    "system": "system/1",
    "runtime": "runtime/1",
    "tools": "tools/1",
    "deps": "deps/1",
}


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_of(obj: Any) -> str:
    """ "sha256:<hex>" of the canonical JSON of `obj`."""
    return "sha256:" + hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def node_key(
    *, kind: str, inputs: Mapping[str, Any], parents: Mapping[str, str], platform: str
) -> str:
    return sha256_of(
        {"recipe": RECIPES[kind], "inputs": inputs, "parents": dict(parents), "platform": platform}
    )
