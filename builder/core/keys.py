"""Content hashes: the cache key of every node (DESIGN.md §3).

A node's key is the sha256 of canonical JSON (sorted keys, no whitespace) of exactly:
- `recipe`: the recipe version of the node's kind (RECIPES below),
- `inputs`: the node's locked inputs as written in sandbox.lock (versions, digests, hashes),
- `parents`: the keys of the nodes it is built on, by node name,
- `platform`: the target platform, e.g. "linux/amd64".
Nothing else: no timestamps, no paths of this machine. Changing what a recipe does, or what is
hashed, means bumping that kind's recipe version here, which rebuilds every node of the kind.
The versions a kind had before stay listed in PREVIOUS, so a lock keyed with one is told apart
from a hand-edited lock: `sandbox lock` re-keys it and keeps every pin.

- system/2: clears setuid/setgid bits on every file but `[image].allow_setuid` (which joined
  the system node's inputs), base-layer files included.
- system/3: the diff is read from the step container's overlay2 upper dir (whiteouts and
  opaque folders converted as docker does) rather than from `docker commit` + `docker save`.
- system/4: the diff is normalized against the layers below it (opaque markers and
  whiteouts of names not below, folders changed only in mtime, Podman's /etc/mtab dropped),
  so Docker's overlay2 upper dir and Podman's commit give the same layer.
- system/5: the home folder of the user it creates is mode 1777, so any uid can write HOME
  once Risoluto's fresh volume on /home/agent is filled from it.
- system/6: a file the layers below already hold alike (same mode, owners, mtime and bytes:
  a lock file apt only opened, a file dpkg rewrote unchanged) is dropped too: Docker 28's
  containerd snapshotter records no such copy-up.
- base/2, system/7: the day of the last password change in /etc/shadow (field 3, which
  pwconv and useradd write) is the lock's epoch's day, not the build's (store/dated.py):
  the same lock gave a different base on another day. system/7 also installs slim, as
  Debian's slim images do (no documentation but copyright files, man pages or
  translations; `[system] docs = true`, locked as `docs`, keeps them), and writes every
  whiteout alike (mode 0, owner 0, the epoch), as engines record them differently.
- tools/2, deps/2: the node's prefix is a host folder mounted into the step's container and
  packed on the host (no commit, no `docker save`); the folders above the prefix are made
  by the tool (mode 755) instead of coming from the container's diff.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# Bump a kind's version whenever its build step changes what lands in the layer.
RECIPES = {
    "base": "base/2",
    "system": "system/7",
    "runtime": "runtime/1",
    "tools": "tools/2",
    "deps": "deps/2",
}

# Earlier versions of each kind's recipe, newest first.
PREVIOUS = {
    "base": ("base/1",),
    "system": ("system/6", "system/5", "system/4", "system/3", "system/2", "system/1"),
    "tools": ("tools/1",),
    "deps": ("deps/1",),
}


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
    *,
    kind: str,
    inputs: Mapping[str, Any],
    parents: Mapping[str, str],
    platform: str,
    recipe: str | None = None,
) -> str:
    """The key of a node; `recipe` overrides the kind's current recipe version."""
    return sha256_of(
        {
            "recipe": recipe or RECIPES[kind],
            "inputs": inputs,
            "parents": dict(parents),
            "platform": platform,
        }
    )


def older_recipe(
    *, kind: str, key: str, inputs: Mapping[str, Any], parents: Mapping[str, str], platform: str
) -> str | None:
    """The earlier recipe version of `kind` that `key` was computed with, if any."""
    for recipe in PREVIOUS.get(kind, ()):
        candidate = node_key(
            kind=kind, inputs=inputs, parents=parents, platform=platform, recipe=recipe
        )
        if candidate == key:
            return recipe
    return None
