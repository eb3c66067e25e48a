"""Moving a step's files to and from an engine that cannot see our filesystem.

A daemon in a VM (Docker Desktop, colima), on another host (`DOCKER_HOST=tcp://`, `ssh://`)
or in a container does not see the folders a step would bind-mount. There, what a step reads
(its inputs, the CA bundle, a tool's files) is packed here and copied into the container
before it starts (`pack`, for the engine's put_archive), and what it writes into a folder of
ours comes back as the engine's archive of that folder and is unpacked into it (`unpack_into`,
from get_archive), owners and modes as the engine recorded them, so the folder is packed into
the same layer as when it was mounted. Nothing in an engine's archive may land outside that
folder: a member leaving it, or written through a symlink, is refused.
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NoReturn

from builder.core.errors import BuildError


def pack(items: Iterable[tuple[str, str]]) -> bytes:
    """A tar of (source path, target path in the container) pairs, for put_archive at `/`;
    a folder is packed with its tree. The engine makes missing folders above a target."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as out:
        for source, target in items:
            out.add(source, arcname=target.strip("/"), recursive=True)
    return buffer.getvalue()


class _Chunks(io.RawIOBase):
    """A readable file over an iterator of byte chunks (the engine's streamed archive)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._rest:
            try:
                self._rest = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._rest))
        buffer[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size


def unpack_into(chunks: Iterable[bytes], dest: Path, *, what: str) -> None:
    """Extract the engine's archive of one folder (its top entry is that folder) into `dest`,
    which takes the folder's own mode and owner; numeric owners, modes and mtimes kept."""
    root = os.path.realpath(dest)
    with tarfile.open(fileobj=io.BufferedReader(_Chunks(chunks)), mode="r|") as archive:
        top: tarfile.TarInfo | None = None

        def inside(member: tarfile.TarInfo, _path: str) -> tarfile.TarInfo | None:
            nonlocal top
            name = _below_top(member.name, what)
            if not name:
                top = member
                return None
            if member.islnk():
                link = _below_top(member.linkname, what)
                if not link:
                    _refuse(member.linkname, what)
                member = member.replace(linkname=link, deep=False)
            parent = os.path.realpath(posixpath.join(root, posixpath.dirname(name)))
            if parent != root and not parent.startswith(root + "/"):
                _refuse(member.name, what)  # through a symlink: out of the folder
            if member.isdev() or member.isfifo():
                return None  # the engine provides /dev; a layer keeps no devices
            return member.replace(name=name, deep=False)

        archive.extractall(root, numeric_owner=True, filter=inside)
    if top is not None:
        if os.geteuid() == 0:  # as tarfile does: owners only where we may set them
            os.chown(root, top.uid, top.gid)
        os.chmod(root, top.mode)  # noqa: PTH101 (str path)


def _below_top(name: str, what: str) -> str:
    """`name` without the archive's top folder; refuses a name leaving it."""
    parts = posixpath.normpath(name).split("/")
    if name.startswith("/") or ".." in parts:
        _refuse(name, what)
    return "/".join(parts[1:])


def _refuse(name: str, what: str) -> NoReturn:
    msg = f"{what}: the engine's archive holds {name!r}, outside the folder; report it as a bug"
    raise BuildError(msg)
