"""What a pushed image attests: an in-toto Statement v1 of SLSA provenance v1, and one of its
SPDX SBOM, both made from the lock.

The provenance says who built the image (`builder.id`), from what (the spec hash, the lock
digest, the platform: `externalParameters`), on what engine (`internalParameters`) and out
of which third-party files: every pin of the lock, with its package URL and checksum, is a
`resolvedDependencies` entry, the same list the SBOM holds. There is no wall-clock time
(SLSA's `startedOn`/`finishedOn` are optional and left out), so the same lock, engine and
manifest give the same bytes. The SBOM statement wraps the SPDX document `build` writes, as
BuildKit's `--sbom` attestations do (predicate type `https://spdx.dev/Document`).
"""

from __future__ import annotations

from typing import Any

from builder.model.lockfile import Lock
from builder.sbom.inventory import lock_digest, packages

STATEMENT = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
SPDX_DOCUMENT = "https://spdx.dev/Document"
BUILD_TYPE = "https://sandbox-builder.dev/build/v1"
BUILDER_ID = "https://sandbox-builder.dev/builder/v1"


def subject(*, name: str, manifest_digest: str) -> list[dict[str, Any]]:
    """The statement's subject: the image manifest (what a registry and cosign name)."""
    algorithm, _, hex_digest = manifest_digest.partition(":")
    return [{"name": name, "digest": {algorithm: hex_digest}}]


def provenance_statement(
    lock: Lock, *, name: str, manifest_digest: str, platform: str, engine: str
) -> dict[str, Any]:
    """SLSA provenance v1 of the image `name@manifest_digest` built from `lock` on `engine`."""
    nodes = lock.nodes(platform)
    dependencies = [
        {
            "name": p.name,
            "uri": p.purl,
            "digest": {algorithm.lower(): value for algorithm, value in p.checksums},
            "annotations": {"node": p.node, "version": p.version},
        }
        for p in packages(nodes, platform)
    ]
    return {
        "_type": STATEMENT,
        "subject": subject(name=name, manifest_digest=manifest_digest),
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "spec_hash": lock.spec_hash,
                    "lock": lock_digest(nodes),
                    "platform": platform,
                    "source_date_epoch": lock.source_date_epoch,
                },
                "internalParameters": {"engine": engine},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID},
                "metadata": {"invocationId": f"{name}@{manifest_digest}"},
            },
        },
    }


def sbom_statement(sbom: dict[str, Any], *, name: str, manifest_digest: str) -> dict[str, Any]:
    """The SPDX document `sbom` as an in-toto statement about the image."""
    return {
        "_type": STATEMENT,
        "subject": subject(name=name, manifest_digest=manifest_digest),
        "predicateType": SPDX_DOCUMENT,
        "predicate": sbom,
    }
