"""Artifacts attached to an image in a registry: pushed with a `subject`, and found again.

Each artifact (an attestation) is an OCI image manifest whose `artifactType` says what it
is, whose config is the empty descriptor, whose one layer is the document, and whose
`subject` is the image manifest: OCI 1.1's way to attach things to an image without
touching it, so the image's manifest digest and its ID stay what they were. A registry with
the referrers API (`GET /v2/<repo>/referrers/<digest>`) lists them by itself; for one
without it (the distribution server 2.x, Debian's docker-registry) the referrers tag scheme
of the distribution spec is kept as well: the tag `sha256-<hex of the subject>` holds an OCI
index naming every attached manifest, which this module reads, extends and writes back
(entries sorted by digest, so the same artifacts give the same index). skopeo, oras and
cosign find artifacts both ways.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.core.errors import RegistryError
from builder.core.keys import canonical_bytes, content_digest
from builder.net.registry import Registry

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_DATA = b"{}"


@dataclass(frozen=True, kw_only=True)
class Artifact:
    """One document to attach: what it is, its bytes and the annotations its manifest gets."""

    artifact_type: str
    media_type: str
    data: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)


def fallback_tag(subject_digest: str) -> str:
    """The referrers tag scheme's tag for `subject_digest`: `sha256-<hex>`."""
    return subject_digest.replace(":", "-")


def artifact_manifest(artifact: Artifact, *, blob: str, subject: Mapping[str, Any]) -> bytes:
    """The artifact's manifest (canonical bytes): the empty config, one layer, the subject."""
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": artifact.artifact_type,
        "config": {"mediaType": EMPTY, "digest": content_digest(EMPTY_DATA), "size": 2},
        "layers": [{"mediaType": artifact.media_type, "digest": blob, "size": len(artifact.data)}],
        "subject": dict(subject),
    }
    if artifact.annotations:
        document["annotations"] = dict(sorted(artifact.annotations.items()))
    return canonical_bytes(document)


def attach(
    registry: Registry,
    *,
    repo: str,
    subject: Mapping[str, Any],
    artifacts: list[Artifact],
    work: Path,
) -> list[dict[str, Any]]:
    """Push `artifacts` with `subject` (the image manifest's descriptor: mediaType, digest,
    size) and make them findable; the descriptors of their manifests, in order."""
    _push(registry, repo, EMPTY_DATA, work)
    pushed = []
    for artifact in artifacts:
        blob = _push(registry, repo, artifact.data, work)
        body = artifact_manifest(artifact, blob=blob, subject=subject)
        digest = registry.put_manifest(repo, content_digest(body), body, MANIFEST)
        descriptor: dict[str, Any] = {
            "mediaType": MANIFEST,
            "digest": digest,
            "size": len(body),
            "artifactType": artifact.artifact_type,
        }
        if artifact.annotations:
            descriptor["annotations"] = dict(sorted(artifact.annotations.items()))
        pushed.append(descriptor)
    subject_digest = str(subject["digest"])
    if registry.referrers(repo, subject_digest) is None:
        _extend_fallback_index(registry, repo, subject_digest, pushed)
    return pushed


def find(registry: Registry, *, repo: str, subject_digest: str) -> list[dict[str, Any]]:
    """The descriptors of the artifacts attached to `subject_digest`, either way."""
    listed = registry.referrers(repo, subject_digest)
    if listed is not None:
        return listed
    found = registry.get_manifest(repo, fallback_tag(subject_digest), [INDEX])
    if found is None:
        return []
    return list(json.loads(found[0]).get("manifests") or [])


def read_artifact(
    registry: Registry, *, repo: str, descriptor: Mapping[str, Any], work: Path
) -> tuple[dict[str, Any], bytes]:
    """An attached artifact's manifest and the bytes of its one layer (checked)."""
    found = registry.get_manifest(repo, str(descriptor["digest"]), [MANIFEST])
    if found is None:
        msg = f"registry {registry.host} lists {descriptor['digest']} as attached to an image "
        msg += f"in {repo} but does not have it. Publish again"
        raise RegistryError(msg)
    manifest = json.loads(found[0])
    layers = manifest.get("layers") or []
    if len(layers) != 1:
        msg = f"{repo}@{descriptor['digest']}: an attestation has one layer, not {len(layers)}"
        raise RegistryError(msg)
    dest = work / str(layers[0]["digest"]).replace(":", "-")
    registry.pull_blob(repo, str(layers[0]["digest"]), dest)
    return manifest, dest.read_bytes()


def _push(registry: Registry, repo: str, data: bytes, work: Path) -> str:
    digest = content_digest(data)
    path = work / digest.replace(":", "-")
    path.write_bytes(data)
    registry.push_blob(repo, digest, path)
    return digest


def _extend_fallback_index(
    registry: Registry, repo: str, subject_digest: str, pushed: list[dict[str, Any]]
) -> None:
    """Add `pushed` to the index under the subject's fallback tag (made when missing)."""
    tag = fallback_tag(subject_digest)
    found = registry.get_manifest(repo, tag, [INDEX])
    entries = (
        {str(m["digest"]): m for m in (json.loads(found[0]).get("manifests") or [])}
        if found
        else {}
    )
    entries.update({str(d["digest"]): d for d in pushed})
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [entries[digest] for digest in sorted(entries)],
    }
    registry.put_manifest(repo, tag, canonical_bytes(index), INDEX)
