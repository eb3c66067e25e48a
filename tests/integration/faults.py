"""Real faults for the fault tests: a Debian mirror that can stall, a registry to kill.

`Mirror` is an HTTP server on the host's docker0 address (so both host programs such as
debootstrap and build containers reach it) that relays every request to deb.debian.org, or,
once `stall()` is called, accepts connections and never answers: what a dead proxy or a
wedged mirror does. `relay()` brings it back.
"""

from __future__ import annotations

import http.server
import subprocess
import threading
import urllib.error
import urllib.request
from typing import Any

UPSTREAM = "http://deb.debian.org"
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}


def docker0_address() -> str:
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True, text=True, check=True
    ).stdout
    return out.split(" inet ", 1)[1].split("/", 1)[0]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    stalled: threading.Event
    released: threading.Event


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def handle(self) -> None:
        if self.server.stalled.is_set():
            self.server.released.wait()  # the connection is accepted; no byte comes back
            return
        super().handle()

    def do_GET(self) -> None:
        if self.server.stalled.is_set():
            self.server.released.wait()
            self.close_connection = True
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers.pop("Host", None)
        request = urllib.request.Request(UPSTREAM + self.path, headers=headers)
        try:
            response: Any = urllib.request.urlopen(request, timeout=60)
        except urllib.error.HTTPError as exc:
            response = exc
        with response:
            body = response.read()
            self.send_response(response.status)
            for name, value in response.headers.items():
                if name.lower() not in _HOP_BY_HOP | {"content-length"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Mirror:
    """deb.debian.org relayed on docker0, or stalled; `url` is its `/debian` base."""

    def __init__(self) -> None:
        self._server = _Server((docker0_address(), 0), _Handler)
        self._server.stalled = threading.Event()
        self._server.released = threading.Event()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}/debian"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stall(self) -> None:
        self._server.released.clear()
        self._server.stalled.set()

    def relay(self) -> None:
        self._server.stalled.clear()
        self._server.released.set()

    def close(self) -> None:
        self.relay()
        self._server.shutdown()
        self._server.server_close()
