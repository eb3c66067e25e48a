"""Plain HTTP/1.0 requests to a local Docker daemon's unix socket, with nothing to import.

The Docker SDK (with requests) takes ~0.15 s to import, more than a whole no-op build should.
The few questions a no-op asks (has the engine this image, with these tags?) go through
here instead: HTTP/1.0 makes the daemon send a plain body and close the connection, so a
socket and a split are all the client there is. `DockerEngine` (engine/docker.py) and the no-op
replay (noop.py) both use it.
"""

from __future__ import annotations

import socket

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
    status = head.split(b" ", 2)[1:2]
    return (int(status[0]) if status and status[0].isdigit() else 0), body
