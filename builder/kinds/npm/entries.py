"""The entries of a layer assembled on the host, spooled, then written as one normalized tar.

The npm and pnpm assemblers (`npm/tree.py`, `deps/pnpmtree.py`) gather a tree's files,
folders and links here in any order; `write` packs them as `tar_directory` packs a container's
folder (store/layers.py): sorted by name, owned by 0:0, every mtime the lock's epoch, links
0777, every folder above an entry 755. File bytes wait in one temporary spool file, so a tree
of thousands of files costs no memory.
"""

from __future__ import annotations

import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from builder.store.layers import LayerFile, layer_writer

FILE, EXECUTABLE, DIR = 0o644, 0o755, 0o755


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One member: a file (its bytes at `data` = (offset, size) in the spool), a folder or
    a symlink to `link`."""

    kind: bytes  # tarfile.REGTYPE, DIRTYPE or SYMTYPE
    mode: int = DIR
    data: tuple[int, int] = (0, 0)
    link: str = ""


def put(spool: IO[bytes], content: bytes) -> tuple[int, int]:
    """Append `content` to the spool: where it lies, for `Entry.data`."""
    offset = spool.seek(0, 2)
    spool.write(content)
    return offset, len(content)


def read(spool: IO[bytes], data: tuple[int, int]) -> bytes:
    """The bytes an `Entry.data` points at."""
    offset, size = data
    spool.seek(offset)
    return spool.read(size)


def file_entry(spool: IO[bytes], content: bytes, mode: int = FILE) -> Entry:
    return Entry(kind=tarfile.REGTYPE, mode=mode, data=put(spool, content))


def link_entry(target: str) -> Entry:
    return Entry(kind=tarfile.SYMTYPE, link=target)


def add_folders(entries: dict[str, Entry]) -> None:
    """Every folder above an entry, down from `opt`, 755 (the package managers' mkdir and
    the folders the container step makes for the prefix)."""
    for name in list(entries):
        parts = name.split("/")
        for i in range(1, len(parts)):
            entries.setdefault("/".join(parts[:i]), Entry(kind=tarfile.DIRTYPE))


def write(entries: Mapping[str, Entry], spool: IO[bytes], dest: Path, epoch: int) -> LayerFile:
    """The layer tar of `entries` at `dest`, hashed as it is written."""
    with layer_writer(dest) as (out, written):
        for name in sorted(entries):
            entry = entries[name]
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = entry.kind, entry.mode, epoch
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if entry.kind == tarfile.SYMTYPE:
                info.mode, info.linkname = 0o777, entry.link
                out.addfile(info)
            elif entry.kind == tarfile.REGTYPE:
                offset, info.size = entry.data
                spool.seek(offset)
                out.addfile(info, spool)
            else:
                out.addfile(info)
    return written.layer(dest)
