"""Plain HTTP/1.0 requests to a local Docker daemon's unix socket, with nothing to import.

The Docker SDK (with requests) takes ~0.15 s to import, more than a whole no-op build should,
and a sixth of a rebuild after one npm tool's bump. The questions a no-op asks (has the
engine this image, with these tags?) and what such a rebuild does (the stacks of our images,
`docker load`, tagging) go through here instead: HTTP/1.0 makes the daemon send a plain
body and close the connection, so a socket and a split are all the client there is; the
load's archive goes up as a chunked HTTP/1.1 body (`stream`). `DockerEngine`
(engine/docker.py) and the no-op replay (noop.py) both use it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from builder.engine import endpoint


def local_socket() -> str | None:
    """The daemon's unix socket when the engine (DOCKER_HOST, else the Docker context, else
    the default) is reached through one, else None."""
    return endpoint.current().local_socket


def request(path: str, method: str, url: str, *, timeout: float = 60) -> tuple[int, bytes]:
    """One request to the socket at `path`: (HTTP status, body); status 0 when the reply has
    none. Raises OSError when the daemon cannot be reached."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(path)
        conn.sendall(f"{method} {url} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
        reply = b"".join(iter(lambda: conn.recv(1 << 16), b""))
    head, _, body = reply.partition(b"\r\n\r\n")
    return _status(head), body


def stream(path: str, url: str, body: Iterable[bytes], *, timeout: float) -> tuple[int, bytes]:
    """POST `body` to the socket at `path` as it is produced (HTTP/1.1, chunked): (status,
    body of the reply, de-chunked). For `docker load` without the SDK: the daemon reads the
    whole archive before it answers, so nothing is read until everything is sent. Raises
    OSError when the daemon cannot be reached or hangs up; `timeout` bounds each wait."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(path)
        conn.sendall(
            f"POST {url} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
        )
        try:
            for chunk in body:
                if chunk:
                    conn.sendall(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            conn.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon answered before reading it all (a refusal): read why
        reply = b"".join(iter(lambda: conn.recv(1 << 16), b""))
        if not reply:
            msg = "the daemon closed the connection without an answer"
            raise ConnectionResetError(msg)
    head, _, rest = reply.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        rest = _dechunk(rest)
    return _status(head), rest


def _status(head: bytes) -> int:
    """The HTTP status of a reply's head; 0 when it has none."""
    status = head.split(b" ", 2)[1:2]
    return int(status[0]) if status and status[0].isdigit() else 0


def _dechunk(data: bytes) -> bytes:
    out, at = [], 0
    while True:
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            break
        size = int(data[at:line_end].split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out.append(data[line_end + 2 : line_end + 2 + size])
        at = line_end + 2 + size + 2
    return b"".join(out)
