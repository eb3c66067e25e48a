"""Attestations: the SLSA provenance statement, DSSE signatures and attaching them to an
image in a real registry (Debian's docker-registry, which has no referrers API, so the
`sha256-<digest>` tag index is what holds them).

The statement is checked with the in-toto attestation library's own types (the Statement v1
wrapper and the SLSA provenance v1 protobuf), a signature with `cryptography` directly (the
DSSE pre-authentication encoding computed here), not with the code that made them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1.statement import Statement

from builder.actions.attest import DSSE_TYPE, attest, check_attestations
from builder.core.errors import VerifyError
from builder.core.keys import canonical_bytes, content_digest
from builder.net.registry import Registry
from builder.publish import signing
from builder.publish.referrers import INDEX, MANIFEST, fallback_tag, find
from builder.sbom import spdx_document
from builder.sbom.inventory import packages
from builder.sbom.provenance import SLSA_PROVENANCE, provenance_statement
from tests.unit.registry_server import RunningRegistry, run_registry
from tests.unit.test_sbom import IMAGE, PLATFORM, make_lock

DIGEST = "sha256:" + "ab" * 32


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_file(key: Ed25519PrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def _pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding, from the spec, to verify without securesystemslib."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def test_the_provenance_is_an_in_toto_statement_of_slsa_provenance_v1() -> None:
    lock = make_lock()
    made = provenance_statement(
        lock, name="h/acme", manifest_digest=DIGEST, platform=PLATFORM, engine="docker-api 20.10"
    )
    statement = Statement.copy_from_pb(json_format.ParseDict(made, Statement([], "", {}).pb))
    statement.validate()  # the library's own rules: type, subject digests, predicate
    assert statement.pb.predicate_type == SLSA_PROVENANCE
    predicate = json_format.ParseDict(made["predicate"], provenance_pb2.Provenance())
    assert predicate.run_details.builder.id
    assert not predicate.run_details.metadata.HasField("started_on")
    deps = predicate.build_definition.resolved_dependencies
    assert len(deps) == len(packages(lock.nodes(PLATFORM), PLATFORM))
    assert all(d.uri.startswith("pkg:") and d.digest for d in deps)
    assert made["predicate"]["buildDefinition"]["externalParameters"]["spec_hash"] == lock.spec_hash
    again = provenance_statement(
        lock, name="h/acme", manifest_digest=DIGEST, platform=PLATFORM, engine="docker-api 20.10"
    )
    assert canonical_bytes(again) == canonical_bytes(made)


def test_a_signed_envelope_verifies_with_the_public_key_and_a_tampered_one_fails(
    tmp_path: Path,
) -> None:
    key = Ed25519PrivateKey.generate()
    (tmp_path / "signing.pem").write_bytes(_pem(key))
    signer = signing.signer_from({signing.KEY_FILE_ENV: str(tmp_path / "signing.pem")})
    assert signer is not None
    envelope = json.loads(signing.sign(b'{"hello": 1}', signer))
    payload = base64.b64decode(envelope["payload"])
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    key.public_key().verify(signature, _pae(envelope["payloadType"], payload))  # raises if bad

    public = signing.public_key(_public_file(key, tmp_path / "signing.pub"))
    data = json.dumps(envelope).encode()
    assert signing.open_envelope(data, key=public, where="x") == b'{"hello": 1}'
    envelope["payload"] = base64.b64encode(b'{"hello": 2}').decode()
    with pytest.raises(VerifyError, match="does not verify"):
        signing.open_envelope(json.dumps(envelope).encode(), key=public, where="x")
    other = signing.public_key(_public_file(Ed25519PrivateKey.generate(), tmp_path / "o.pub"))
    with pytest.raises(VerifyError, match="does not verify"):
        signing.open_envelope(data, key=other, where="x")


def test_a_key_that_is_not_a_key_is_exit_2_and_its_contents_are_never_said(
    tmp_path: Path,
) -> None:
    with pytest.raises(signing.SigningKeyError) as raised:
        signing.signer_from({signing.KEY_PEM_ENV: "top-secret-not-a-pem"})
    assert raised.value.exit_code == 2
    assert "top-secret" not in str(raised.value)
    assert signing.signer_from({}) is None
    with pytest.raises(signing.SigningKeyError, match="cannot read"):
        signing.signer_from({signing.KEY_FILE_ENV: str(tmp_path / "missing.pem")})


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path / "registry") as server:
        yield server


def _push_image(client: Registry, tmp_path: Path) -> tuple[str, int]:
    config = canonical_bytes({"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": []}})
    (tmp_path / "config").write_bytes(config)
    client.push_blob("acme", content_digest(config), tmp_path / "config")
    body = canonical_bytes(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": content_digest(config),
                "size": len(config),
            },
            "layers": [],
        }
    )
    return client.put_manifest("acme", "v1", body, MANIFEST), len(body)


def _attest(registry: RunningRegistry, digest: str, size: int, environ: dict[str, str]) -> None:
    lock = make_lock()
    attest(
        host=registry.host,
        name="acme",
        lock=lock,
        platform=PLATFORM,
        manifest_digest=digest,
        manifest_size=size,
        sbom=spdx_document(lock, image=IMAGE, platform=PLATFORM),
        engine="docker-api 20.10",
        environ=environ,
    )


def _check(registry: RunningRegistry, key: Any) -> Any:
    lock = make_lock()
    return check_attestations(
        lock=lock,
        ref=f"{registry.host}/acme:v1",
        platform=PLATFORM,
        sbom=spdx_document(lock, image=IMAGE, platform=PLATFORM),
        key=key,
    )


def test_attestations_attach_under_the_fallback_tag_and_leave_the_image_as_it_was(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    client = Registry(registry.host)
    digest, size = _push_image(client, tmp_path)
    key = Ed25519PrivateKey.generate()
    _attest(registry, digest, size, {signing.KEY_PEM_ENV: _pem(key).decode()})

    found = client.get_manifest("acme", "v1", [MANIFEST])
    assert found is not None
    assert found[2] == digest  # the image's manifest is untouched
    index = client.get_manifest("acme", fallback_tag(digest), [INDEX])
    assert index is not None
    assert [m["artifactType"] for m in json.loads(index[0])["manifests"]] == [DSSE_TYPE] * 2
    _attest(registry, digest, size, {signing.KEY_PEM_ENV: _pem(key).decode()})  # again
    assert len(find(client, repo="acme", subject_digest=digest)) == 2  # Ed25519: same bytes

    public = signing.public_key(_public_file(key, tmp_path / "k.pub"))
    report = _check(registry, public)
    assert report.ok, report.problems
    assert sorted(a.predicate_type for a in report.attestations) == [
        "https://slsa.dev/provenance/v1",
        "https://spdx.dev/Document",
    ]
    assert all(a.verified for a in report.attestations)

    other = signing.public_key(_public_file(Ed25519PrivateKey.generate(), tmp_path / "o.pub"))
    wrong = _check(registry, other)
    assert not wrong.ok
    assert all("does not verify" in p for p in wrong.problems)


def test_unsigned_attestations_fail_when_a_key_is_asked_for_and_a_lie_is_caught(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    client = Registry(registry.host)
    digest, size = _push_image(client, tmp_path)
    _attest(registry, digest, size, {})
    assert _check(registry, None).ok
    public = signing.public_key(_public_file(Ed25519PrivateKey.generate(), tmp_path / "k.pub"))
    assert any("not signed" in p for p in _check(registry, public).problems)

    # Another lock's provenance, attached by hand: its dependencies are not this lock's.
    other = make_lock(spec_hash="sha256:" + "7" * 64)
    attest(
        host=registry.host,
        name="acme",
        lock=other,
        platform=PLATFORM,
        manifest_digest=digest,
        manifest_size=size,
        sbom=spdx_document(other, image=IMAGE, platform=PLATFORM),
        engine="docker-api 20.10",
        environ={},
    )
    problems = _check(registry, None).problems
    assert any("externalParameters is not this lock's" in p for p in problems), problems


def test_require_signed_refuses_an_unsigned_or_local_image_and_passes_a_signed_one(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    from builder.actions.attest import require_signature
    from builder.model.specfile import load_spec

    key = Ed25519PrivateKey.generate()
    _public_file(key, tmp_path / "signing.pub")
    (tmp_path / "sandbox.toml").write_text(
        f'[image]\nname = "{IMAGE}"\nrequire_signed = true\npublic_key = "signing.pub"\n'
        '[base]\nbootstrap = { suite = "bookworm" }\n'
    )
    spec = load_spec(tmp_path / "sandbox.toml")
    client = Registry(registry.host)
    digest, size = _push_image(client, tmp_path)
    overlay = tmp_path / "overlay.json"

    def pin(image: str) -> None:
        overlay.write_text(json.dumps({"codex": {"sandbox": {"image": image}}}))

    pin("sha256:" + "1" * 64)
    with pytest.raises(VerifyError, match="local image"):
        require_signature(spec=spec, lock=make_lock(), overlay=overlay)
    pin(f"{registry.host}/acme@{digest}")
    _attest(registry, digest, size, {})  # unsigned
    with pytest.raises(VerifyError, match="not signed") as refused:
        require_signature(spec=spec, lock=make_lock(), overlay=overlay)
    assert refused.value.exit_code == 10

    # Signed, but the unsigned ones are still attached: every one must verify.
    _attest(registry, digest, size, {signing.KEY_PEM_ENV: _pem(key).decode()})
    with pytest.raises(VerifyError):
        require_signature(spec=spec, lock=make_lock(), overlay=overlay)
    # Only signed ones, on another image: applied.
    found = client.get_manifest("acme", digest, [MANIFEST])
    assert found is not None
    other = client.put_manifest("acme", "v2", found[0] + b" ", MANIFEST)  # same image, new bytes
    _attest(registry, other, size + 1, {signing.KEY_PEM_ENV: _pem(key).decode()})
    pin(f"{registry.host}/acme@{other}")
    require_signature(spec=spec, lock=make_lock(), overlay=overlay)


def test_a_push_with_an_unreadable_signing_key_stops_before_anything_is_built(
    tmp_path: Path,
) -> None:
    from tests.unit.clirun import sandbox

    (tmp_path / "sandbox.toml").write_text(
        f'[image]\nname = "{IMAGE}"\nregistry = "127.0.0.1:9"\n'
        '[base]\nbootstrap = { suite = "bookworm" }\n'
    )
    run = sandbox(
        "-f",
        tmp_path / "sandbox.toml",
        "publish",
        env={signing.KEY_PEM_ENV: "top-secret-not-a-pem", "SANDBOX_CACHE_DIR": None},
    )
    assert run.exit_code == 2, run.stderr
    assert signing.KEY_PEM_ENV in run.stderr
    assert "top-secret" not in run.stderr + run.stdout
