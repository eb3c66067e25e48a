"""`sandbox verify` and attestations: a teammate checks the pushed image (issue 31).

Build and push on the first daemon; on the second, clean daemon with an empty cache dir and
node store, `verify` of the pushed reference rebuilds every node (pulls none) and agrees.
Then the image in the registry is changed by hand (one file of the system layer rewritten,
pushed under the same tag): verify names the node and
the file. Then a push with a signing key attaches signed provenance and SBOM that skopeo
finds under the referrers tag scheme and `verify --attestations` checks; a statement changed
after signing fails.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import urllib.request
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1.statement import Statement

from builder.net.registry import Registry
from tests.integration import risoluto_server
from tests.integration.conftest import Project

pytestmark = pytest.mark.docker

SPEC = """
[image]
name = "sandbox-test/verified"
registry = "{registry}"

[base]
bootstrap = {{ suite = "bookworm" }}

[system]
packages = ["jq"]
"""
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _http(url: str, *, method: str = "GET", body: bytes | None = None, **headers: str) -> Any:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    return _NO_PROXY.open(request, timeout=60)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push_blob(registry: Registry, repo: str, data: bytes, folder: Path) -> str:
    digest = _digest(data)
    blob = folder / digest.replace(":", "-")
    blob.write_bytes(data)
    registry.push_blob(repo, digest, blob)
    return digest


def _tamper(registry: str, repo: str, tag: str, diff_id: str, folder: Path) -> str:
    """Rewrite one small regular file of layer `diff_id` and push the image under `tag`
    again; the path of the file changed. The registry client only moves the bytes."""
    client = Registry(registry)
    base = f"http://{registry}/v2/{repo}"
    with _http(f"{base}/manifests/{tag}", Accept=MANIFEST) as reply:
        manifest = json.loads(reply.read())
    with _http(f"{base}/blobs/{manifest['config']['digest']}") as reply:
        config = json.loads(reply.read())
    layer_index = config["rootfs"]["diff_ids"].index(diff_id)
    with _http(f"{base}/blobs/{manifest['layers'][layer_index]['digest']}") as reply:
        layer = gzip.decompress(reply.read())
    out = io.BytesIO()
    changed = ""
    with tarfile.open(fileobj=io.BytesIO(layer)) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for member in src:
            data = src.extractfile(member).read() if member.isreg() else None  # type: ignore[union-attr]
            if data is not None and not changed and 0 < member.size < 4096:
                changed, data = member.name, data + b"\n# changed by hand\n"
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    new_layer = out.getvalue()
    config["rootfs"]["diff_ids"][layer_index] = _digest(new_layer)
    packed = gzip.compress(new_layer, mtime=0)
    manifest["layers"][layer_index].update(
        digest=_push_blob(client, repo, packed, folder), size=len(packed)
    )
    config_bytes = json.dumps(config).encode()
    manifest["config"].update(
        digest=_push_blob(client, repo, config_bytes, folder), size=len(config_bytes)
    )
    client.put_manifest(repo, tag, json.dumps(manifest).encode(), MANIFEST)
    return changed.removeprefix("./")


def test_verify_rebuilds_on_a_clean_machine_and_names_a_file_changed_in_the_registry(
    project: Project,
    base_image: str,
    registry: str,
    second_engine: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    project.write(SPEC.format(registry=registry))
    project.ok("lock")
    pushed = json.loads(project.ok("build", "--push", "--json").out)
    tag = pushed["image"]["tags"][0].rsplit(":", 1)[1]
    tagged = f"{registry}/sandbox-test/verified:{tag}"

    teammate = Project(root=project.root, cache=tmp_path_factory.mktemp("verify-cache"))
    elsewhere = {
        "DOCKER_HOST": second_engine,
        "SANDBOX_STORE_DIR": str(tmp_path_factory.mktemp("verify-store")),
    }
    run = teammate.sandbox("verify", "--json", tagged, env=elsewhere)
    assert run.code == 0, run.err
    agreed = json.loads(run.out)
    assert agreed["same"] is True
    assert agreed["found"] == agreed["rebuilt"] == pushed["image"]["id"]
    assert {n["status"] for n in agreed["nodes"]} == {"built"}, agreed["nodes"]

    system = next(n["layer"] for n in pushed["nodes"] if n["name"] == "system")
    changed = _tamper(
        registry, "sandbox-test/verified", tag, system, tmp_path_factory.mktemp("tamper")
    )
    run = teammate.sandbox("verify", "--json", tagged, env=elsewhere)
    assert run.code == 10, run.err
    differs = json.loads(run.out)
    assert differs["same"] is False
    assert differs["rebuilt"] == pushed["image"]["id"]
    assert differs["difference"]["node"] == "system"
    files = differs["difference"]["files"]
    assert [f["path"] for f in files] == [changed]
    assert files[0]["ours"]["sha256"] != files[0]["theirs"]["sha256"]
    assert files[0]["theirs"]["size"] == files[0]["ours"]["size"] + len("\n# changed by hand\n")
    assert "system" in run.err
    assert changed in run.out

    # The image as the first daemon holds it, read through `docker save`: it agrees.
    run = project.sandbox("verify", "--json", pushed["image"]["engine_id"])
    assert run.code == 0, run.err
    assert json.loads(run.out)["found"] == pushed["image"]["id"]


def _skopeo_raw(ref: str) -> dict[str, Any]:
    done = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return cast(dict[str, Any], json.loads(done.stdout))


def _skopeo_digest(ref: str, *, config: bool = False) -> str:
    extra = ["--config", "--raw"] if config else []
    done = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", *extra, f"docker://{ref}"],
        capture_output=True,
        check=True,
    )
    return _digest(done.stdout) if config else str(json.loads(done.stdout)["Digest"])


def test_push_attaches_signed_attestations_skopeo_finds_and_verify_checks(
    project: Project, base_image: str, registry: str, tmp_path: Path
) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "signing.pem").write_bytes(pem)
    public = tmp_path / "signing.pub"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    project.write(SPEC.format(registry=registry).replace("verified", "attested"))
    project.ok("lock")
    built = json.loads(project.ok("build", "--json").out)
    run = project.sandbox(
        "build", "--push", "--json", env={"SANDBOX_SIGNING_KEY": str(tmp_path / "signing.pem")}
    )
    assert run.code == 0, run.err
    assert "PRIVATE KEY" not in run.out + run.err
    pushed = json.loads(run.out)
    ref, digest = pushed["image"]["ref"], pushed["image"]["ref"].split("@", 1)[1]
    tagged = f"{registry}/sandbox-test/attested:{pushed['image']['tags'][0].rsplit(':', 1)[1]}"

    # The image is as it was: the tag names the same manifest, its config is the image ID.
    assert _skopeo_digest(tagged) == digest
    assert _skopeo_digest(tagged, config=True) == built["image"]["id"] == pushed["image"]["id"]

    # skopeo (not our code) finds them under the referrers tag scheme, subject = the image.
    index = _skopeo_raw(f"{registry}/sandbox-test/attested:{digest.replace(':', '-')}")
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    kinds = sorted(m["annotations"]["in-toto.io/predicate-type"] for m in index["manifests"])
    assert kinds == ["https://slsa.dev/provenance/v1", "https://spdx.dev/Document"]
    for entry in index["manifests"]:
        artifact = _skopeo_raw(f"{registry}/sandbox-test/attested@{entry['digest']}")
        assert artifact["subject"]["digest"] == digest
        assert artifact["artifactType"] == "application/vnd.dsse.envelope.v1+json"

    run = project.sandbox("verify", "--attestations", "--key", str(public), "--json", ref)
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert report["ok"] is True
    assert all(a["verified"] for a in report["attestations"])

    # A statement changed after signing (the signature kept), attached as a publisher would.
    provenance = next(
        m for m in index["manifests"]
        if m["annotations"]["in-toto.io/predicate-type"] == "https://slsa.dev/provenance/v1"
    )  # fmt: skip
    client = Registry(registry)
    found = client.get_manifest("sandbox-test/attested", provenance["digest"], [MANIFEST])
    assert found is not None
    artifact = json.loads(found[0])
    blob = tmp_path / "envelope"
    client.pull_blob("sandbox-test/attested", artifact["layers"][0]["digest"], blob)
    envelope = json.loads(blob.read_bytes())
    payload = base64.b64decode(envelope["payload"])
    # What was pushed, checked with other people's code: the signature with `cryptography`
    # over DSSE's pre-authentication encoding, the statement with the in-toto types.
    kind = envelope["payloadType"].encode()
    signed = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)
    key.public_key().verify(base64.b64decode(envelope["signatures"][0]["sig"]), signed)
    statement = json.loads(payload)
    parsed = json_format.ParseDict(statement, Statement([], "", {}).pb)
    Statement.copy_from_pb(parsed).validate()
    json_format.ParseDict(statement["predicate"], provenance_pb2.Provenance())
    assert statement["subject"][0]["digest"] == {"sha256": digest.split(":", 1)[1]}
    statement["predicate"]["buildDefinition"]["externalParameters"]["platform"] = "linux/s390x"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    forged = json.dumps(envelope).encode()
    artifact["layers"][0].update(
        digest=_push_blob(client, "sandbox-test/attested", forged, tmp_path), size=len(forged)
    )
    body = json.dumps(artifact).encode()
    forged_digest = client.put_manifest("sandbox-test/attested", _digest(body), body, MANIFEST)
    genuine = json.dumps(index).encode()
    index["manifests"] = [
        {**m, "digest": forged_digest, "size": len(body)} if m is provenance else m
        for m in index["manifests"]
    ]
    client.put_manifest(
        "sandbox-test/attested",
        digest.replace(":", "-"),
        json.dumps(index).encode(),
        "application/vnd.oci.image.index.v1+json",
    )
    run = project.sandbox("verify", "--attestations", "--key", str(public), ref)
    assert run.code == 10, run.err
    assert "does not verify" in run.err
    assert forged_digest in run.err

    # [image] require_signed: `build --apply` refuses the image while the forged statement is
    # attached (its push attaches the genuine ones again, the forged one stays): nothing
    # reaches Risoluto. Once the index holds only genuine ones, `overlay apply` applies it.
    signed_spec = SPEC.format(registry=registry).replace("verified", "attested")
    project.write(
        signed_spec.replace(
            "[image]\n", f'[image]\nrequire_signed = true\npublic_key = "{public}"\n'
        )
    )
    url, server, stop = risoluto_server.start()
    try:
        run = project.sandbox(
            "build", "--push", "--apply", url,
            env={"SANDBOX_SIGNING_KEY": str(tmp_path / "signing.pem")},
        )  # fmt: skip
        assert run.code == 10, run.err
        assert "require_signed" in run.err
        assert "image" not in server.overlay.get("codex", {}).get("sandbox", {})
        client.put_manifest(
            "sandbox-test/attested",
            digest.replace(":", "-"),
            genuine,
            "application/vnd.oci.image.index.v1+json",
        )
        run = project.sandbox("overlay", "apply", url)
        assert run.code == 0, run.err
        assert server.overlay["codex"]["sandbox"]["image"] == ref
    finally:
        stop()
