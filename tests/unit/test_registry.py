"""The registry client (builder/net/registry.py) against a real distribution server, no HTTP mocks.

The servers come from tests/unit/registry_server.py: Debian's `docker-registry` without auth,
with htpasswd (Basic) auth, and with Bearer auth backed by a small token server. `skopeo`
checks once that what we push is readable by an independent client.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from builder.core.errors import RegistryError
from builder.net import registry as registry_module
from builder.net.registry import Registry
from tests.unit.registry_server import (
    RunningRegistry,
    TokenServer,
    docker_config,
    free_port,
    htpasswd_auth,
    run_registry,
    run_token_server,
    silly_auth,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
USER, PASSWORD = "alice", "s3cret-pw"


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own `docker login` must not change what the tests send.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    monkeypatch.setattr(registry_module, "RETRY", replace(registry_module.RETRY, first_wait=0.01))


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with run_registry(tmp_path_factory.mktemp("plain")) as running:
        yield running


@pytest.fixture(scope="module")
def basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    folder = tmp_path_factory.mktemp("basic")
    auth = htpasswd_auth(folder / "htpasswd", USER, PASSWORD)
    with run_registry(folder / "registry", auth=auth) as running:
        yield running


@pytest.fixture
def token_auth(tmp_path: Path) -> Iterator[tuple[RunningRegistry, TokenServer]]:
    with (
        run_token_server(USER, PASSWORD) as tokens,
        run_registry(tmp_path / "token", auth=silly_auth(tokens.url, "test-registry")) as running,
    ):
        yield running, tokens


def blob(folder: Path, data: bytes, name: str = "blob") -> tuple[Path, str]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path, f"sha256:{hashlib.sha256(data).hexdigest()}"


def image(folder: Path) -> tuple[list[tuple[Path, str]], bytes]:
    """A one-layer image, its layer a plain tar (the client moves any bytes): blobs, manifest."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("etc/greeting")
        content = b"hello from a layer\n"
        info.size, info.mtime = len(content), 0
        tar.addfile(info, io.BytesIO(content))
    layer = blob(folder, buffer.getvalue(), "layer.tar")
    config_doc = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer[1]]},
    }
    config = blob(folder, json.dumps(config_doc, sort_keys=True).encode(), "config.json")
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config[1], "size": config[0].stat().st_size},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer[1], "size": layer[0].stat().st_size}],
    }
    return [config, layer], json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def push_image(client: Registry, repo: str, tag: str, folder: Path) -> tuple[bytes, str]:
    blobs, manifest = image(folder)
    for path, digest in blobs:
        client.push_blob(repo, digest, path)
    return manifest, client.put_manifest(repo, tag, manifest, OCI_MANIFEST)


# -- blobs ----------------------------------------------------------------------------


def test_a_blob_is_uploaded_once(plain: RunningRegistry, tmp_path: Path) -> None:
    path, digest = blob(tmp_path, os.urandom(1 << 20))
    client = Registry(plain.host)
    assert not client.has_blob("team/blobs", digest)
    assert client.push_blob("team/blobs", digest, path) is True
    assert client.has_blob("team/blobs", digest)
    assert client.push_blob("team/blobs", digest, path) is False
    assert not client.has_blob("team/other", digest)  # blobs are per repository


def test_a_pulled_blob_has_the_pushed_bytes(plain: RunningRegistry, tmp_path: Path) -> None:
    data = os.urandom(1 << 20)
    path, digest = blob(tmp_path, data)
    client = Registry(plain.host)
    client.push_blob("team/pull", digest, path)
    (tmp_path / "out").mkdir()
    dest = tmp_path / "out" / "layer.tar"
    client.pull_blob("team/pull", digest, dest)
    assert dest.read_bytes() == data
    assert [p.name for p in dest.parent.iterdir()] == ["layer.tar"]  # no partial file left


def test_a_blob_whose_bytes_do_not_match_is_refused(plain: RunningRegistry, tmp_path: Path) -> None:
    path, digest = blob(tmp_path, os.urandom(4096))
    client = Registry(plain.host)
    client.push_blob("team/rot", digest, path)
    plain.blob_file(digest).write_bytes(b"bit rot in the registry's storage")
    (tmp_path / "out").mkdir()
    with pytest.raises(RegistryError, match="hashes to sha256:") as caught:
        client.pull_blob("team/rot", digest, tmp_path / "out" / "layer.tar")
    assert caught.value.exit_code == 7
    assert digest in str(caught.value)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_blob_the_registry_lacks_cannot_be_pulled(plain: RunningRegistry, tmp_path: Path) -> None:
    missing = "sha256:" + "0" * 64
    with pytest.raises(RegistryError, match=r"BLOB_UNKNOWN.*push the blob first") as caught:
        Registry(plain.host).pull_blob("team/pull", missing, tmp_path / "layer.tar")
    assert plain.host in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_its_digest_is_not_published(
    plain: RunningRegistry, tmp_path: Path
) -> None:
    path, _ = blob(tmp_path, b"the real content")
    claimed = f"sha256:{hashlib.sha256(b'what the lock says').hexdigest()}"
    client = Registry(plain.host)
    with pytest.raises(RegistryError, match="Nothing was published") as caught:
        client.push_blob("team/wrong", claimed, path)
    assert str(path) in str(caught.value)
    assert claimed in str(caught.value)
    assert not client.has_blob("team/wrong", claimed)


def test_a_malformed_digest_is_refused_before_any_request(tmp_path: Path) -> None:
    port = free_port()  # nothing listens: a request would fail differently
    with pytest.raises(RegistryError, match="not a blob digest"):
        Registry(f"127.0.0.1:{port}").has_blob("team/app", "sha256:ABC")


def test_a_trickling_blob_download_is_stopped_at_the_overall_limit_and_leaves_nothing(
    trickle: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDBOX_NET_TIMEOUT", "1")
    monkeypatch.setenv("SANDBOX_STEP_TIMEOUT", "1.5")
    host = trickle.split("/")[2]
    digest = "sha256:" + "0" * 64
    started = time.monotonic()
    with pytest.raises(RegistryError) as caught:
        Registry(host).pull_blob("team/slow", digest, tmp_path / "blob")
    seconds = time.monotonic() - started
    assert seconds < 3, f"the trickle went on for {seconds:.1f}s"
    url = f"http://{host}/v2/team/slow/blobs/{digest}"
    assert str(caught.value).startswith(f"registry {host}: downloading {url} was stopped after ")
    assert "(the limit of one download, SANDBOX_STEP_TIMEOUT=1.5)" in str(caught.value)
    assert list(tmp_path.iterdir()) == [], "a partial download was kept"


# -- manifests ------------------------------------------------------------------------


def test_a_manifest_reads_back_by_tag_and_by_digest(plain: RunningRegistry, tmp_path: Path) -> None:
    client = Registry(plain.host)
    manifest, digest = push_image(client, "team/app", "v1", tmp_path)
    assert digest == f"sha256:{hashlib.sha256(manifest).hexdigest()}"
    by_tag = client.get_manifest("team/app", "v1", [OCI_MANIFEST])
    by_digest = client.get_manifest("team/app", digest, [OCI_MANIFEST])
    assert by_tag == (manifest, OCI_MANIFEST, digest)
    assert by_digest == by_tag


def test_a_manifest_missing_a_blob_is_refused(plain: RunningRegistry, tmp_path: Path) -> None:
    client = Registry(plain.host)
    _, manifest = image(tmp_path)  # its blobs were never pushed to this repository
    with pytest.raises(RegistryError, match="push every blob the manifest references first"):
        client.put_manifest("team/incomplete", "v1", manifest, OCI_MANIFEST)


def test_an_unknown_manifest_is_none(plain: RunningRegistry, tmp_path: Path) -> None:
    client = Registry(plain.host)
    push_image(client, "team/known", "v1", tmp_path)
    assert client.get_manifest("team/known", "v2", [OCI_MANIFEST]) is None
    assert client.get_manifest("team/never-pushed", "latest", [OCI_MANIFEST]) is None
    assert client.get_manifest("team/known", "sha256:" + "1" * 64, [OCI_MANIFEST]) is None


def test_an_oci_manifest_outside_accept_is_an_error_not_none(
    plain: RunningRegistry, tmp_path: Path
) -> None:
    # The distribution server answers 404 here, which must not read as "never published".
    client = Registry(plain.host)
    push_image(client, "team/accept", "v1", tmp_path)
    docker_v2 = "application/vnd.docker.distribution.manifest.v2+json"
    with pytest.raises(RegistryError, match="accept header") as caught:
        client.get_manifest("team/accept", "v1", [docker_v2])
    assert docker_v2 in str(caught.value)


def test_skopeo_reads_what_was_pushed(plain: RunningRegistry, tmp_path: Path) -> None:
    client = Registry(plain.host)
    manifest, digest = push_image(client, "team/skopeo", "v1", tmp_path / "image")
    ref = f"docker://{plain.host}/team/skopeo:v1"
    raw = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", ref],
        capture_output=True,
        check=True,
    ).stdout
    assert raw == manifest
    policy = tmp_path / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    copied = tmp_path / "copied"
    subprocess.run(
        ["skopeo", "--policy", str(policy), "copy", "--src-tls-verify=false", ref, f"dir:{copied}"],
        capture_output=True,
        check=True,
    )  # skopeo checks every blob against its digest while copying
    assert (copied / "manifest.json").read_bytes() == manifest
    assert hashlib.sha256((copied / "manifest.json").read_bytes()).hexdigest() == digest[7:]


# -- reaching the registry ------------------------------------------------------------


def test_localhost_is_spoken_to_over_plain_http(plain: RunningRegistry) -> None:
    port = plain.host.rsplit(":", 1)[1]
    assert Registry(f"localhost:{port}").get_manifest("team/none", "v1", [OCI_MANIFEST]) is None


def test_a_refused_connection_names_the_host_and_the_fix() -> None:
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError) as caught:
        Registry(host, retries=2).has_blob("team/app", "sha256:" + "0" * 64)
    message = str(caught.value)
    assert caught.value.exit_code == 7
    assert host in message
    assert "after 2 attempts" in message
    assert "Is the registry running, and is [image].registry in sandbox.toml right?" in message


# -- credentials ----------------------------------------------------------------------


def test_basic_auth_without_credentials_says_docker_login(
    basic: RunningRegistry, tmp_path: Path
) -> None:
    path, digest = blob(tmp_path, b"private layer")
    with pytest.raises(RegistryError, match=r"^unauthorized: ") as caught:
        Registry(basic.host).push_blob("team/private", digest, path)
    assert caught.value.exit_code == 7
    assert f"`docker login {basic.host}`" in str(caught.value)
    assert "no credentials" in str(caught.value)


def test_basic_auth_with_docker_login_credentials_pushes(
    basic: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker_config(tmp_path / "docker", basic.host, USER, PASSWORD)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))  # found as Docker finds it
    client = Registry(basic.host)
    path, digest = blob(tmp_path, os.urandom(1 << 16))
    assert client.push_blob("team/private", digest, path) is True
    assert client.has_blob("team/private", digest)
    manifest, manifest_digest = push_image(client, "team/private", "v1", tmp_path / "image")
    assert client.get_manifest("team/private", "v1", [OCI_MANIFEST]) == (
        manifest,
        OCI_MANIFEST,
        manifest_digest,
    )


def test_basic_auth_with_a_wrong_password_never_shows_it(
    basic: RunningRegistry, tmp_path: Path
) -> None:
    config = docker_config(tmp_path / "docker", f"https://{basic.host}/v1/", USER, "wrong-pw")
    with pytest.raises(RegistryError, match=r"^unauthorized: .* refused the ones in") as caught:
        Registry(basic.host, docker_config=config).has_blob("team/private", "sha256:" + "0" * 64)
    assert "wrong-pw" not in str(caught.value)
    assert f"docker login {basic.host}" in str(caught.value)


def test_a_bearer_token_is_fetched_once_per_scope(
    token_auth: tuple[RunningRegistry, TokenServer], tmp_path: Path
) -> None:
    running, tokens = token_auth
    config = docker_config(tmp_path / "docker", running.host, USER, PASSWORD)
    client = Registry(running.host, docker_config=config)
    files = [blob(tmp_path, os.urandom(1 << 16), f"blob{i}") for i in range(6)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        pushed = list(pool.map(lambda f: client.push_blob("team/app", f[1], f[0]), files))
    assert pushed == [True] * 6
    manifest, digest = push_image(client, "team/app", "v1", tmp_path / "image")
    assert client.get_manifest("team/app", digest, [OCI_MANIFEST]) == (
        manifest,
        OCI_MANIFEST,
        digest,
    )
    scopes = [r["query"]["scope"] for r in tokens.requests]
    assert len(tokens.issued) == 2  # pull,push for the pushes, then pull for the read
    assert "repository:team/app:pull,push" in scopes[0]
    assert scopes[1] == ["repository:team/app:pull"]
    assert all(r["query"]["service"] == ["test-registry"] for r in tokens.requests)


def test_a_token_server_refusal_is_unauthorized(
    token_auth: tuple[RunningRegistry, TokenServer], tmp_path: Path
) -> None:
    running, tokens = token_auth
    config = docker_config(tmp_path / "docker", running.host, USER, "wrong-pw")
    with pytest.raises(RegistryError, match=r"^unauthorized: ") as caught:
        Registry(running.host, docker_config=config).has_blob("team/app", "sha256:" + "0" * 64)
    assert f"docker login {running.host}" in str(caught.value)
    assert "wrong-pw" not in str(caught.value)
    assert tokens.issued == []


def test_a_failing_token_server_is_retried(
    token_auth: tuple[RunningRegistry, TokenServer], tmp_path: Path
) -> None:
    running, tokens = token_auth
    tokens.failures = [503]
    config = docker_config(tmp_path / "docker", running.host, USER, PASSWORD)
    path, digest = blob(tmp_path, b"layer")
    assert Registry(running.host, docker_config=config).push_blob("team/app", digest, path)
    assert len(tokens.requests) == 2


def test_a_docker_config_with_a_credential_helper_is_named(
    basic: RunningRegistry, tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {}, "credsStore": "desktop"}))
    with pytest.raises(RegistryError, match="credential helper") as caught:
        Registry(basic.host, docker_config=config).has_blob("team/app", "sha256:" + "0" * 64)
    assert "docker login" in str(caught.value)


def test_a_corrupt_docker_config_is_named(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text("{not json")
    with pytest.raises(RegistryError, match="cannot read the Docker config") as caught:
        Registry("127.0.0.1:5000", docker_config=config)
    assert str(config) in str(caught.value)
