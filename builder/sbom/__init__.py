"""The software bill of materials of an image, made from its sandbox.lock alone.

`inventory` turns every pin of every node into one package that names the layer it lives in;
`spdx` and `cyclonedx` write those as documents; `provenance` makes the in-toto statements
(SLSA provenance, the SBOM) a pushed image is attested with. This module picks the format,
renders the bytes and writes them; it is the API the rest of the builder uses.

Deterministic, like the lock: no wall clock (the creation time is the lock's
source_date_epoch), identifiers derived from the pins, and the namespace (SPDX) and serial
number (CycloneDX) from the lock digest, the `dev.sandbox-builder.lock` label of the image.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from builder.core.atomic import write_atomic
from builder.core.keys import content_digest
from builder.model.lockfile import Lock
from builder.sbom.cyclonedx import cyclonedx_document
from builder.sbom.inventory import NAMESPACE, Package, lock_digest, packages, purl
from builder.sbom.spdx import TOOL, spdx_document

__all__ = [
    "FORMATS",
    "NAMESPACE",
    "TOOL",
    "Package",
    "cyclonedx_document",
    "digest_of",
    "lock_digest",
    "make_sbom",
    "packages",
    "purl",
    "render",
    "spdx_document",
    "write_sbom",
]

FORMATS = ("spdx", "cyclonedx")


def make_sbom(lock: Lock, *, image: str, platform: str, fmt: str = "spdx") -> dict[str, Any]:
    """The document in `fmt` (one of FORMATS)."""
    if fmt == "cyclonedx":
        return cyclonedx_document(lock, image=image, platform=platform)
    return spdx_document(lock, image=image, platform=platform)


def render(document: Mapping[str, Any]) -> bytes:
    """The bytes written and printed: compact JSON (C-encoded: a no-op build renders it to
    label the image, and indenting takes the pure-Python encoder, 10x slower), fixed key
    order, a final newline. `jq .` shows it indented."""
    return (json.dumps(document, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def digest_of(data: bytes) -> str:
    """`sha256:<hex>` of the document's bytes: the image's `dev.sandbox-builder.sbom` label."""
    return content_digest(data)


def write_sbom(data: bytes, path: Path) -> None:
    write_atomic(path, data)
