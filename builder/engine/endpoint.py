"""Which engine to talk to, decided as the Docker CLI decides it.

`DOCKER_HOST` first (with `DOCKER_TLS_VERIFY` / `DOCKER_CERT_PATH` for TLS); else the Docker
context named by `DOCKER_CONTEXT`, else the config file's `currentContext` (`docker context
use`: colima, OrbStack and Docker Desktop set one), its host and TLS files read from the
CLI's context store; else the default unix socket. Only the standard library is used: the
no-op replay asks this before deciding it needs no Docker SDK at all.

Context store layout (Docker CLI): `<config dir>/contexts/meta/<sha256(name)>/meta.json`
holds `Endpoints.docker.Host` (and `SkipTLSVerify`); TLS files, when the context has them,
are `<config dir>/contexts/tls/<sha256(name)>/docker/{ca,cert,key}.pem`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from builder.core.errors import EngineUnavailableError

DEFAULT_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """An engine's address. `tls_dir` holds ca/cert/key.pem when the connection uses TLS;
    `verify` says whether the engine's certificate is checked; `source` says where it came
    from, for messages (`DOCKER_HOST`, `context colima`, `default`)."""

    host: str
    tls_dir: Path | None = None
    verify: bool = True
    source: str = "default"

    @property
    def local_socket(self) -> str | None:
        """The unix socket's path when the engine is reached through one, else None."""
        return self.host.removeprefix("unix://") if self.host.startswith("unix://") else None

    @property
    def scheme(self) -> str:
        return self.host.split("://", 1)[0] if "://" in self.host else "unix"

    def describe(self) -> str:
        """`at HOST` plus how it was chosen and its TLS files, for messages."""
        text = f"at {self.host}"
        if self.source.startswith("context"):
            text += f" ({self.source})"
        if self.tls_dir is not None:
            text += f" (TLS, certificates from {self.tls_dir})"
        return text


def current() -> Endpoint:
    """The endpoint this process's environment and the Docker CLI's config name."""
    host = os.environ.get("DOCKER_HOST")
    if host:
        tls = bool(os.environ.get("DOCKER_TLS_VERIFY")) or bool(os.environ.get("DOCKER_CERT_PATH"))
        certs = Path(os.environ.get("DOCKER_CERT_PATH") or Path.home() / ".docker")
        return Endpoint(
            host=host,
            tls_dir=certs if tls else None,
            verify=bool(os.environ.get("DOCKER_TLS_VERIFY")),
            source="DOCKER_HOST",
        )
    name = os.environ.get("DOCKER_CONTEXT") or _config_context()
    if name and name != "default":
        return _context(name)
    return Endpoint(host=DEFAULT_HOST)


def _config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def _config_context() -> str | None:
    try:
        config = json.loads((_config_dir() / "config.json").read_text())
    except (OSError, ValueError):
        return None  # no config, or one the CLI would also ignore for this purpose
    name = config.get("currentContext") if isinstance(config, dict) else None
    return name if isinstance(name, str) else None


def _context(name: str) -> Endpoint:
    """The named context's docker endpoint; an unknown or unreadable one is exit 9, as the
    CLI refuses it too."""
    key = hashlib.sha256(name.encode()).hexdigest()
    meta = _config_dir() / "contexts" / "meta" / key / "meta.json"
    chosen = "DOCKER_CONTEXT" if os.environ.get("DOCKER_CONTEXT") else "currentContext"
    try:
        data = json.loads(meta.read_text())
        docker = data["Endpoints"]["docker"]
        host = docker["Host"]
    except FileNotFoundError:
        msg = (
            f"Docker context {name!r} (from {chosen}) does not exist: no {meta}. "
            "`docker context ls` lists the contexts; unset it or create it"
        )
        raise EngineUnavailableError(msg) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = (
            f"Docker context {name!r} (from {chosen}) is unreadable: {meta}: {exc}. "
            "`docker context inspect` shows what the CLI makes of it"
        )
        raise EngineUnavailableError(msg) from None
    if not isinstance(host, str) or not host:
        msg = f"Docker context {name!r} (from {chosen}) names no docker host in {meta}"
        raise EngineUnavailableError(msg)
    tls = _config_dir() / "contexts" / "tls" / key / "docker"
    return Endpoint(
        host=host,
        tls_dir=tls if (tls / "ca.pem").is_file() or (tls / "cert.pem").is_file() else None,
        verify=not docker.get("SkipTLSVerify", False),
        source=f"context {name}",
    )
