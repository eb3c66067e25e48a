"""The SPDX 2.3 JSON document of a lock: the image, its layers (one per node), their packages.

Each package names its layer by a CONTAINS relationship from a package named after the node,
plus a comment with the node's key. The namespace derives from the lock digest.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from builder import __version__
from builder.model.lockfile import Lock, stack
from builder.sbom.inventory import (
    ID_UNSAFE,
    NAMESPACE,
    Package,
    creation_time,
    lock_digest,
    packages,
)

TOOL = f"sandbox-builder-{__version__}"
_SPDX_PURPOSE = {
    "library": "LIBRARY",
    "application": "APPLICATION",
    "container": "CONTAINER",
    "file": "FILE",
}


def spdx_document(lock: Lock, *, image: str, platform: str) -> dict[str, Any]:
    """An SPDX 2.3 JSON document: image, its layers (one per node), their packages."""
    nodes = lock.nodes(platform)
    digest = lock_digest(nodes)
    layer_ids = {name: "SPDXRef-Layer-" + ID_UNSAFE.sub("-", name) for name in stack(nodes)}
    found = packages(nodes, platform)
    image_pkg = {
        "SPDXID": "SPDXRef-Image",
        "name": image,
        "versionInfo": digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "primaryPackagePurpose": "CONTAINER",
        "comment": f"the image sandbox.lock describes for {platform} (lock digest {digest})",
    }
    layers = [
        {
            "SPDXID": layer_ids[name],
            "name": name,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "primaryPackagePurpose": "ARCHIVE",
            "comment": f"the image layer of node {name} (key {nodes[name].key})",
        }
        for name in stack(nodes)
    ]
    relationships = [_relation("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image")]
    relationships += [_relation("SPDXRef-Image", "CONTAINS", layer_ids[n]) for n in stack(nodes)]
    for name in stack(nodes):
        for parent in sorted(nodes[name].parents):
            relationships.append(_relation(layer_ids[name], "DEPENDS_ON", layer_ids[parent]))
    relationships += [_relation(layer_ids[p.node], "CONTAINS", f"SPDXRef-{p.ref}") for p in found]
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{image} ({platform})",
        "documentNamespace": f"{NAMESPACE}/{quote(image)}/{digest.removeprefix('sha256:')}",
        "creationInfo": {"created": creation_time(lock), "creators": [f"Tool: {TOOL}"]},
        "packages": [image_pkg, *layers, *(_spdx_package(p) for p in found)],
        "relationships": relationships,
    }


def _relation(element: str, kind: str, related: str) -> dict[str, str]:
    return {"spdxElementId": element, "relationshipType": kind, "relatedSpdxElement": related}


def _spdx_package(p: Package) -> dict[str, Any]:
    out: dict[str, Any] = {"SPDXID": f"SPDXRef-{p.ref}", "name": p.name}
    if p.version:
        out["versionInfo"] = p.version
    out["downloadLocation"] = p.url or "NOASSERTION"
    out["filesAnalyzed"] = False
    out["primaryPackagePurpose"] = _SPDX_PURPOSE[p.kind]
    if p.checksums:
        out["checksums"] = [{"algorithm": a, "checksumValue": v} for a, v in p.checksums]
    ref = {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl"}
    out["externalRefs"] = [{**ref, "referenceLocator": p.purl}]
    note = f"; {p.note}" if p.note else ""
    out["comment"] = f"in layer {p.node} (node key {p.key}){note}"
    return out
