"""What an SBOM takes from sandbox.lock: every pin of every node as one `Package`.

Apt packages of base and system (`pkg:deb/debian/<name>@<version>?arch=..&distro=<suite>`;
an image base's, which dpkg lists without a .deb checksum, under its own os-release ID),
runtimes (`pkg:generic` with the archive's URL, or `pkg:pypi` for a wheel), each pip tool's
closure (one per tool venv), the npm tools' closure (`pkg:npm`, its integrity as checksum),
binary tools, and for `deps.<name>` its package manager and the project's lockfiles (the lock
pins those files, not their packages). Also what ties a document to its lock: the lock
digest and the creation time (the lock's source_date_epoch, never the wall clock).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from builder.core.keys import sha256_of
from builder.kinds import KINDS
from builder.kinds.purls import purl
from builder.model.lockfile import Lock, NodeLock, stack

__all__ = ["purl"]

NAMESPACE = "https://sandbox-builder.dev/sbom"
ID_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")  # what SPDX IDs and bom-refs cannot hold


@dataclass(frozen=True, kw_only=True)
class Package:
    """One pinned thing in one layer of the image."""

    node: str
    key: str  # the node's key
    ref: str  # unique in the document: SPDXID and bom-ref suffix
    name: str
    version: str  # "" when the pin has none (a lockfile)
    purl: str
    kind: str  # library | application | container | file
    checksums: tuple[tuple[str, str], ...]  # (SHA256, hex), ...
    url: str = ""  # where the build downloads it, when the lock says
    note: str = ""  # where in the layer, e.g. "venv of pip tool mypy"


def lock_digest(nodes: Mapping[str, NodeLock]) -> str:
    """The digest the image carries as its `dev.sandbox-builder.lock` label."""
    return sha256_of({name: node.key for name, node in sorted(nodes.items())})


def creation_time(lock: Lock) -> str:
    """The documents' creation time: the lock's source_date_epoch, as ISO 8601 UTC."""
    return datetime.fromtimestamp(lock.source_date_epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def packages(nodes: Mapping[str, NodeLock], platform: str) -> list[Package]:
    """Every package of every node (each kind's `pins`), nodes in image stack order, each
    node's sorted."""
    distro = KINDS.distro(nodes, platform)
    found: list[Package] = []
    taken: set[str] = set()
    for name in stack(nodes):
        node = nodes[name]
        items = sorted(KINDS.of(name).pins(node, distro), key=lambda i: i[0])
        for ident, item in items:
            ref = ID_UNSAFE.sub("-", f"{name}-{ident}").strip("-")
            if ref in taken:  # two pins that differ only in characters IDs cannot hold
                ref += "-" + hashlib.sha256(f"{name}\0{ident}".encode()).hexdigest()[:8]
            taken.add(ref)
            found.append(Package(node=name, key=node.key, ref=ref, **item))
    return found
