"""A real registry for the registry client's tests: Debian's `docker-registry`, started here.

`docker-registry` is the CNCF distribution server (the one Docker Hub descends from), so the
client meets real status codes, headers and error bodies; there is no HTTP mock. Each server
runs on a free port of 127.0.0.1 with its storage in a temp folder, in one of three modes:

- no auth;
- `htpasswd` auth (Basic challenges). Its file needs bcrypt, and Python's standard library has
  none, so `htpasswd_line` calls libxcrypt's `crypt()` through ctypes: libcrypt.so.1 is part of
  every Debian system (package libcrypt1, priority required), unlike `htpasswd` (apache2-utils)
  or the `bcrypt` wheel;
- `silly` auth (Bearer challenges) with `TokenServer` as its realm: the registry only checks
  that a request carries an Authorization header, while the token server, which checks the
  Basic credentials and hands out tokens, records what it was asked. Together they exercise
  the whole token flow a real registry with a token service (Docker Hub, GHCR) uses.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import http.server
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

REGISTRY = "/usr/bin/docker-registry"


@dataclass(frozen=True, kw_only=True)
class RunningRegistry:
    host: str  # 127.0.0.1:PORT
    storage: Path

    def blob_file(self, digest: str) -> Path:
        """Where the filesystem driver keeps a blob's bytes (to corrupt it on purpose)."""
        hex_ = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def run_registry(folder: Path, *, auth: str = "") -> Iterator[RunningRegistry]:
    """Start `docker-registry` with storage in `folder`; `auth` is a YAML `auth:` block."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth
    )
    log_path = folder / "registry.log"
    with log_path.open("w") as log:
        server = subprocess.Popen([REGISTRY, "serve", str(config)], stdout=log, stderr=log)
    host = f"127.0.0.1:{port}"
    try:
        _wait_until_up(host, server, log_path)
        yield RunningRegistry(host=host, storage=folder / "data")
    finally:
        server.terminate()
        server.wait(timeout=10)


def _wait_until_up(host: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}/v2/", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # 401 from an auth-enabled registry: it is up
        except OSError as exc:
            if time.monotonic() > deadline or server.poll() is not None:
                msg = f"docker-registry did not start ({exc}); see {log}"
                raise RuntimeError(msg) from exc
            time.sleep(0.1)


def htpasswd_line(user: str, password: str) -> str:
    """`user:<bcrypt hash>` as the distribution server's htpasswd auth reads it."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = lib.crypt_gensalt(b"$2y$", 4, None, 0)  # cost 4: the minimum, tests stay fast
    hashed = lib.crypt(password.encode(), salt)
    if not salt or not hashed or not hashed.startswith(b"$2y$"):
        msg = "libcrypt cannot make bcrypt hashes here"
        raise RuntimeError(msg)
    return f"{user}:{hashed.decode()}\n"


def htpasswd_auth(path: Path, user: str, password: str) -> str:
    path.write_text(htpasswd_line(user, password))
    return f"auth:\n  htpasswd:\n    realm: test-realm\n    path: {path}\n"


def silly_auth(realm: str, service: str) -> str:
    return f"auth:\n  silly:\n    realm: {realm}\n    service: {service}\n"


def docker_config(folder: Path, host: str, user: str, password: str) -> Path:
    """A Docker CLI config.json holding `docker login` credentials for `host`."""
    folder.mkdir(parents=True, exist_ok=True)
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    path = folder / "config.json"
    path.write_text(json.dumps({"auths": {host: {"auth": pair}}}))
    return path


@dataclass
class TokenServer:
    """A token service: GET /token with the right Basic credentials gets a fresh token."""

    user: str
    password: str
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)  # statuses to answer first, in order
    issued: list[str] = field(default_factory=list)


class _TokenHTTPServer(http.server.ThreadingHTTPServer):
    tokens: TokenServer


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        tokens = cast(_TokenHTTPServer, self.server).tokens
        parts = urlsplit(self.path)
        tokens.requests.append({"path": parts.path, "query": parse_qs(parts.query)})
        expected = base64.b64encode(f"{tokens.user}:{tokens.password}".encode()).decode()
        if tokens.failures:
            self._answer(tokens.failures.pop(0), {"details": "failing on purpose"})
        elif self.headers["Authorization"] != f"Basic {expected}":
            self._answer(401, {"details": "incorrect username or password"})
        else:
            token = f"token-{len(tokens.issued) + 1}"
            tokens.issued.append(token)
            self._answer(200, {"token": token, "expires_in": 300})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def run_token_server(user: str, password: str) -> Iterator[TokenServer]:
    tokens = TokenServer(user=user, password=password)
    server = _TokenHTTPServer(("127.0.0.1", 0), _TokenHandler)
    server.tokens = tokens
    tokens.url = f"http://127.0.0.1:{server.server_address[1]}/token"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield tokens
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
