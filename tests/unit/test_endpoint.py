"""Which engine the tool talks to: the Docker CLI's order (DOCKER_HOST, then the context
DOCKER_CONTEXT or the config's currentContext names, then the default socket)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from builder.core.errors import EngineUnavailableError
from builder.engine import endpoint


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    return tmp_path


def _context(config: Path, name: str, host: str, *, tls: bool = False) -> None:
    key = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / key
    meta.mkdir(parents=True)
    docker = {"Host": host, "SkipTLSVerify": False}
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Endpoints": {"docker": docker}}))
    if tls:
        certs = config / "contexts" / "tls" / key / "docker"
        certs.mkdir(parents=True)
        for pem in ("ca", "cert", "key"):
            (certs / f"{pem}.pem").write_text("-")


def test_nothing_set_is_the_default_socket(config: Path) -> None:
    found = endpoint.current()
    assert found.host == "unix:///var/run/docker.sock"
    assert found.local_socket == "/var/run/docker.sock"
    assert found.tls_dir is None


def test_docker_host_wins_over_a_current_context(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _context(config, "colima", "unix:///home/me/.colima/default/docker.sock")
    (config / "config.json").write_text(json.dumps({"currentContext": "colima"}))
    monkeypatch.setenv("DOCKER_HOST", "tcp://build-host:2376")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", "/certs")
    found = endpoint.current()
    assert (found.host, found.tls_dir, found.verify) == (
        "tcp://build-host:2376",
        Path("/certs"),
        True,
    )
    assert found.local_socket is None
    assert found.describe() == "at tcp://build-host:2376 (TLS, certificates from /certs)"


def test_the_config_files_current_context_is_used(config: Path) -> None:
    _context(config, "colima", "unix:///home/me/.colima/default/docker.sock")
    (config / "config.json").write_text(json.dumps({"currentContext": "colima"}))
    found = endpoint.current()
    assert found.local_socket == "/home/me/.colima/default/docker.sock"
    assert found.describe() == "at unix:///home/me/.colima/default/docker.sock (context colima)"


def test_docker_context_wins_over_the_config_and_brings_its_tls_files(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _context(config, "colima", "unix:///colima.sock")
    _context(config, "remote", "tcp://10.0.0.5:2376", tls=True)
    (config / "config.json").write_text(json.dumps({"currentContext": "colima"}))
    monkeypatch.setenv("DOCKER_CONTEXT", "remote")
    found = endpoint.current()
    assert found.host == "tcp://10.0.0.5:2376"
    assert found.tls_dir is not None
    assert (found.tls_dir / "ca.pem").is_file()
    assert found.verify


def test_the_default_context_is_the_default_socket(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONTEXT", "default")
    assert endpoint.current().host == "unix:///var/run/docker.sock"


def test_an_unknown_context_says_how_to_list_them(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONTEXT", "gone")
    with pytest.raises(
        EngineUnavailableError, match=r"'gone' \(from DOCKER_CONTEXT\).*docker context ls"
    ):
        endpoint.current()


def test_a_broken_config_file_is_ignored_as_the_cli_does(config: Path) -> None:
    (config / "config.json").write_text("{not json")
    assert endpoint.current().host == "unix:///var/run/docker.sock"


def test_ssh_hosts_are_not_a_local_socket(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "ssh://me@build-host")
    found = endpoint.current()
    assert (found.scheme, found.local_socket) == ("ssh", None)
