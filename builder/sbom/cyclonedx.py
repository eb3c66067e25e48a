"""The CycloneDX 1.5 JSON BOM of a lock: the image as metadata.component, every package a
component that names its layer by `sandbox:node` and `sandbox:key` properties. The serial
number derives from the lock digest.
"""

from __future__ import annotations

from typing import Any

from builder import __version__
from builder.model.lockfile import Lock
from builder.sbom.inventory import NAMESPACE, Package, creation_time, lock_digest, packages

_CDX_ALG = {"SHA1": "SHA-1", "SHA256": "SHA-256", "SHA384": "SHA-384", "SHA512": "SHA-512"}


def cyclonedx_document(lock: Lock, *, image: str, platform: str) -> dict[str, Any]:
    """A CycloneDX 1.5 JSON BOM: the image as metadata.component, every package a component."""
    nodes = lock.nodes(platform)
    digest = lock_digest(nodes)
    import uuid  # CycloneDX only: a build (SPDX) does not pay for the import

    serial = uuid.uuid5(uuid.NAMESPACE_URL, f"{NAMESPACE}/{image}/{digest}")
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{serial}",
        "version": 1,
        "metadata": {
            "timestamp": creation_time(lock),
            "tools": {
                "components": [
                    {"type": "application", "name": "sandbox-builder", "version": __version__}
                ]
            },
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": image,
                "version": digest,
                "properties": [{"name": "sandbox:platform", "value": platform}],
            },
        },
        "components": [_cdx_component(p) for p in packages(nodes, platform)],
    }


def _cdx_component(p: Package) -> dict[str, Any]:
    out: dict[str, Any] = {"type": p.kind, "bom-ref": p.ref, "name": p.name}
    if p.version:
        out["version"] = p.version
    if p.checksums:
        out["hashes"] = [{"alg": _CDX_ALG[a], "content": v} for a, v in p.checksums]
    out["purl"] = p.purl
    if p.url:
        out["externalReferences"] = [{"type": "distribution", "url": p.url}]
    properties = {"sandbox:node": p.node, "sandbox:key": p.key, "sandbox:note": p.note}
    out["properties"] = [{"name": k, "value": v} for k, v in properties.items() if v]
    return out
