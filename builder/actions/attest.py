"""Attestations of a pushed image: attached on `build --push` / `publish`, checked by
`sandbox verify --attestations REF`.

Two in-toto statements about the image manifest (builder/sbom/provenance.py): SLSA
provenance v1 and the SPDX SBOM. With a signing key in the environment
(publish/signing.py) each is a DSSE envelope signed with it; without one, the statement
itself. They are attached as OCI artifacts whose subject is the image manifest
(publish/referrers.py), which leaves the image's manifest digest and ID as they were.

Checking reads them back from the registry and holds each to what this lock says: the
subject is REF's manifest, the provenance's spec hash, lock digest, platform and resolved
dependencies are the lock's, the SBOM is the document this lock gives; with a public key,
every envelope's signature verifies and an unsigned statement fails.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.core.errors import RegistryError, VerifyError
from builder.core.keys import canonical_bytes
from builder.model.lockfile import Lock
from builder.publish.referrers import Artifact, attach, find, read_artifact
from builder.sbom.provenance import (
    SLSA_PROVENANCE,
    SPDX_DOCUMENT,
    STATEMENT,
    provenance_statement,
    sbom_statement,
)

if TYPE_CHECKING:
    from securesystemslib.signer import Key

    from builder.model.spec import Spec

STATEMENT_TYPE = "application/vnd.in-toto+json"
DSSE_TYPE = "application/vnd.dsse.envelope.v1+json"
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"  # as Docker's attestations name it
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def attest(
    *,
    host: str,
    name: str,
    lock: Lock,
    platform: str,
    manifest_digest: str,
    manifest_size: int,
    sbom: Mapping[str, Any],
    engine: str,
    environ: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Attach the provenance and SBOM statements (signed when the environment names a key)
    to `name@manifest_digest` in registry `host`; the attached manifests' descriptors."""
    from builder.net.registry import Registry
    from builder.publish.signing import sign, signer_from

    signer = signer_from(environ)
    subject_name = f"{host}/{name}"
    statements = [
        provenance_statement(
            lock,
            name=subject_name,
            manifest_digest=manifest_digest,
            platform=platform,
            engine=engine,
        ),
        sbom_statement(dict(sbom), name=subject_name, manifest_digest=manifest_digest),
    ]
    artifacts = []
    for statement in statements:
        data = canonical_bytes(statement)
        kind = STATEMENT_TYPE
        if signer is not None:
            data, kind = sign(data, signer), DSSE_TYPE
        annotations = {PREDICATE_ANNOTATION: str(statement["predicateType"])}
        artifacts.append(
            Artifact(artifact_type=kind, media_type=kind, data=data, annotations=annotations)
        )
    subject = {"mediaType": MANIFEST, "digest": manifest_digest, "size": manifest_size}
    with tempfile.TemporaryDirectory(prefix="sandbox-attest-") as work:
        return attach(
            Registry(host), repo=name, subject=subject, artifacts=artifacts, work=Path(work)
        )


@dataclass(frozen=True, kw_only=True)
class Attestation:
    """One attestation found on REF, and what checking it found."""

    predicate_type: str
    digest: str  # of its manifest
    signed: bool
    verified: bool  # its signature verified with the key given
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "predicate_type": self.predicate_type,
            "digest": self.digest,
            "signed": self.signed,
            "verified": self.verified,
            "problems": list(self.problems),
        }


@dataclass(frozen=True, kw_only=True)
class AttestationReport:
    ref: str
    manifest_digest: str
    attestations: list[Attestation]
    problems: list[str]  # the report's own (one missing) and each attestation's

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "manifest": self.manifest_digest,
            "ok": self.ok,
            "attestations": [a.to_json() for a in self.attestations],
            "problems": self.problems,
        }

    def text(self) -> str:
        lines = [f"attestations of {self.ref} ({self.manifest_digest}):"]
        for a in self.attestations:
            how = (
                "signed, signature verified" if a.verified else "signed" if a.signed else "unsigned"
            )
            state = "ok" if not a.problems else "FAILED"
            lines.append(f"  {a.predicate_type}  {how}  {state}")
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)


def check_attestations(
    *,
    lock: Lock,
    ref: str,
    platform: str,
    sbom: Mapping[str, Any],
    key: Key | None,
) -> AttestationReport:
    """Fetch REF's attestations and hold them to this lock (and `key`, when given)."""
    from builder.net.registry import Registry
    from builder.resolve.base import split_ref

    host, repo, reference = split_ref(ref)
    registry = Registry(host)
    found = registry.get_manifest(repo, reference, [MANIFEST])
    if found is None:
        msg = f"registry {host} has no image manifest {repo}:{reference}. Check REF"
        raise RegistryError(msg)
    digest = found[2]
    expected = {
        SLSA_PROVENANCE: provenance_statement(
            lock, name=f"{host}/{repo}", manifest_digest=digest, platform=platform, engine=""
        ),
        SPDX_DOCUMENT: sbom_statement(dict(sbom), name=f"{host}/{repo}", manifest_digest=digest),
    }
    attestations = []
    with tempfile.TemporaryDirectory(prefix="sandbox-attestations-") as work:
        for descriptor in find(registry, repo=repo, subject_digest=digest):
            if descriptor.get("artifactType") not in (STATEMENT_TYPE, DSSE_TYPE):
                continue  # someone else's artifact (a cosign signature, a scan)
            manifest, data = read_artifact(
                registry, repo=repo, descriptor=descriptor, work=Path(work)
            )
            attestations.append(
                _check_one(
                    manifest, data, digest=str(descriptor["digest"]), expected=expected, key=key
                )
            )
    problems = [
        f"no {kind} attestation is attached to {ref}. Publish it again with this tool"
        for kind in sorted(expected)
        if not any(a.predicate_type == kind for a in attestations)
    ]
    problems += [f"{a.predicate_type} ({a.digest}): {p}" for a in attestations for p in a.problems]
    return AttestationReport(
        ref=ref, manifest_digest=digest, attestations=attestations, problems=problems
    )


def _check_one(
    manifest: Mapping[str, Any],
    data: bytes,
    *,
    digest: str,
    expected: Mapping[str, dict[str, Any]],
    key: Key | None,
) -> Attestation:
    from builder.publish.signing import open_envelope

    kind = str(manifest.get("artifactType", ""))
    signed = kind == DSSE_TYPE
    problems: list[str] = []
    where = f"the attestation {digest}"
    try:
        payload = open_envelope(data, key=key, where=where) if signed else data
        statement = json.loads(payload)
    except VerifyError as exc:
        return Attestation(
            predicate_type=str((manifest.get("annotations") or {}).get(PREDICATE_ANNOTATION, "?")),
            digest=digest,
            signed=signed,
            verified=False,
            problems=(str(exc),),
        )
    except ValueError:
        statement = {}
    predicate_type = str(statement.get("predicateType", "?"))
    if key is not None and not signed:
        problems.append("it is not signed, and a public key was given")
    want = expected.get(predicate_type)
    if statement.get("_type") != STATEMENT or want is None:
        problems.append("it is not an in-toto Statement v1 of SLSA provenance or an SPDX SBOM")
    elif statement.get("subject") != want["subject"]:
        problems.append(f"its subject is {statement.get('subject')}, not this image")
    elif predicate_type == SLSA_PROVENANCE:
        problems += _provenance_problems(statement["predicate"], want["predicate"])
    elif statement.get("predicate") != want["predicate"]:
        problems.append("its SBOM is not the one this lock gives (`sandbox sbom`)")
    return Attestation(
        predicate_type=predicate_type,
        digest=digest,
        signed=signed,
        verified=signed and key is not None,
        problems=tuple(problems),
    )


def _provenance_problems(found: Mapping[str, Any], want: Mapping[str, Any]) -> list[str]:
    """What in a provenance predicate disagrees with the lock (the engine may differ)."""
    problems = []
    got, expected = found.get("buildDefinition") or {}, want["buildDefinition"]
    for field in ("buildType", "externalParameters", "resolvedDependencies"):
        if got.get(field) != expected[field]:
            problems.append(f"its buildDefinition.{field} is not this lock's")
    if (found.get("runDetails") or {}).get("builder") != want["runDetails"]["builder"]:
        problems.append("its builder is not sandbox-builder")
    return problems


def require_signature(*, spec: Spec, lock: Lock, overlay: Path) -> None:
    """With `[image] require_signed`, refuse (exit 10) to apply the overlay at `overlay`
    unless the image it pins is pushed and its attestations verify with the spec's key."""
    if not spec.image.require_signed:
        return
    from builder.actions.verify import default_ref
    from builder.core.platforms import host_platform
    from builder.publish.signing import public_key
    from builder.resolve.base import has_registry
    from builder.sbom import spdx_document

    ref = default_ref(overlay)
    if not has_registry(ref):
        msg = (
            f"[image].require_signed: {overlay} pins {ref}, a local image, which carries no "
            "attestations; nothing was applied. Build with `--push` (and SANDBOX_SIGNING_KEY "
            "set), then apply"
        )
        raise VerifyError(msg)
    assert spec.image.public_key is not None  # the spec refuses require_signed without one
    platform = host_platform()
    report = check_attestations(
        lock=lock,
        ref=ref,
        platform=platform,
        sbom=spdx_document(lock, image=spec.image.name, platform=platform),
        key=public_key(spec.image.public_key),
    )
    if not report.ok:
        msg = (
            f"[image].require_signed: the attestations of {ref} do not verify with "
            f"{spec.image.public_key}, so nothing was applied: {'; '.join(report.problems)}. "
            "Publish it again with SANDBOX_SIGNING_KEY set to the matching private key"
        )
        raise VerifyError(msg)
