"""What a layer tar holds, file by file, and where two layers that should be equal differ.

`sandbox verify` rebuilds an image and, when a layer's diff ID differs from the one it is
checked against, says why: which paths were added, removed or changed, with the facts that
make a tar entry what it is (type, size, mode, owner, content hash, link target). A plain
tar or a gzip one is read (a registry blob or a layer from `docker save`), so the caller
never decompresses first. Timestamps are left out on purpose: every layer of ours is clamped
to the lock's epoch, and a difference in mtime alone shows as a diff ID that differs with
no file listed, which the caller reports as such.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.core.errors import CacheError

_CHUNK = 1 << 20
_KINDS = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.FIFOTYPE: "fifo",
}


@dataclass(frozen=True, kw_only=True)
class FileInfo:
    """One tar entry, as far as the image's filesystem can tell."""

    kind: str
    size: int
    mode: int
    uid: int
    gid: int
    sha256: str = ""  # of a regular file's bytes
    link: str = ""  # a symlink's target, a hard link's other path

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "size": self.size,
            "mode": f"{self.mode:04o}",
            "owner": f"{self.uid}:{self.gid}",
            "sha256": self.sha256,
            "link": self.link,
        }

    def text(self) -> str:
        what = f"{self.kind} {self.size} B {self.mode:04o} {self.uid}:{self.gid}"
        if self.sha256:
            what += f" {self.sha256[:19]}"
        return f"{what} -> {self.link}" if self.link else what


@dataclass(frozen=True, kw_only=True)
class FileDifference:
    """A path whose entry differs: None on one side means that layer lacks it."""

    path: str
    ours: FileInfo | None
    theirs: FileInfo | None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ours": self.ours.to_json() if self.ours else None,
            "theirs": self.theirs.to_json() if self.theirs else None,
        }

    def text(self) -> str:
        ours = self.ours.text() if self.ours else "absent"
        theirs = self.theirs.text() if self.theirs else "absent"
        return f"{self.path}: rebuilt {ours}; checked {theirs}"


def listing(tar: Path) -> dict[str, FileInfo]:
    """Every entry of the layer tar (plain or gzip) at `tar`, by path (no leading `./`)."""
    found: dict[str, FileInfo] = {}
    try:
        with tarfile.open(tar, mode="r:*") as archive:
            for member in archive:
                found[_path(member.name)] = _info(archive, member)
    except (tarfile.TarError, OSError, EOFError) as exc:
        msg = f"cannot read the layer {tar} ({exc}). It is corrupt or not a tar; fetch it again"
        raise CacheError(msg) from exc
    return found


def differences(ours: dict[str, FileInfo], theirs: dict[str, FileInfo]) -> list[FileDifference]:
    """The paths whose entries differ between two listings, sorted by path."""
    return [
        FileDifference(path=path, ours=ours.get(path), theirs=theirs.get(path))
        for path in sorted(ours.keys() | theirs.keys())
        if ours.get(path) != theirs.get(path)
    ]


def _path(name: str) -> str:
    name = name.removeprefix("./").rstrip("/")
    return name or "."


def _info(archive: tarfile.TarFile, member: tarfile.TarInfo) -> FileInfo:
    kind = _KINDS.get(member.type, f"type {member.type!r}")
    digest = ""
    if member.isreg():
        stream = archive.extractfile(member)
        hasher = hashlib.sha256()
        if stream is not None:
            while chunk := stream.read(_CHUNK):
                hasher.update(chunk)
        digest = f"sha256:{hasher.hexdigest()}"
    link = _path(member.linkname) if member.islnk() else member.linkname
    return FileInfo(
        kind=kind,
        size=member.size if member.isreg() else 0,
        mode=member.mode,
        uid=member.uid,
        gid=member.gid,
        sha256=digest,
        link=link,
    )
