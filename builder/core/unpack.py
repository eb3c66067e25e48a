"""Extracting a downloaded archive into a node's prefix, safely and deterministically.

The archives come from the internet, so nothing in them may land outside `dest`: a member
named with `..` or an absolute path, a symlink or hard link pointing out of the tree, or a
file written through a symlink that leaves it, is refused with a BuildError. Only members
under `root/` are extracted, with that folder stripped (a release's top folder, or the
payload inside a wheel), so the tree starts where the runtime expects its prefix.

Output depends on the archive's contents only: owners, mtimes and odd modes are dropped.
Files are 0755 when the archive marks them executable by anyone and 0644 otherwise,
folders 0755: readable by every user, because the image runs as an arbitrary UID, and free
of setuid bits. Devices and FIFOs are skipped.
"""

from __future__ import annotations

import functools
import io
import os
import posixpath
import shutil
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, NoReturn

from isal import isal_zlib

from builder.core import space
from builder.core.errors import BuildError
from builder.core.inflate import ISAL_ERROR

FORMATS = ("tar.gz", "tgz", "tar.xz", "zip", "raw")
_TAR_MODES: dict[str, Literal["r:gz", "r:xz"]] = {"tar.gz": "r:gz", "tgz": "r:gz", "tar.xz": "r:xz"}


def unpack(archive: Path, dest: Path, *, fmt: str, root: str = "", target: str = "") -> None:
    """Extract `archive` (one of FORMATS) into `dest`, keeping only what lies under `root`.

    For `raw` (a single executable, not an archive) `target` names the file created in `dest`.
    """
    dest.mkdir(parents=True, exist_ok=True)
    if fmt == "raw":
        if not target or "/" in target:
            msg = f"a raw download needs a plain file name to be installed as, not {target!r}"
            raise BuildError(msg)
        _Writer(dest, archive).file(
            target, 0o755, lambda: archive.open("rb"), archive.stat().st_size
        )
        return
    writer = _Writer(dest, archive)
    prefix = _prefix(root)
    try:
        if fmt == "zip":
            _unzip(archive, prefix, writer)
        elif fmt in _TAR_MODES:
            _untar(archive, _TAR_MODES[fmt], prefix, writer)
        else:
            msg = (
                f"{archive}: unknown archive format {fmt!r} (expected one of {FORMATS}). "
                "sandbox.lock may have been edited by hand: run `sandbox lock`."
            )
            raise BuildError(msg)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        if space.is_full(exc):
            what = f"unpacking {archive.name}"
            raise space.full_disk(dest, what=what, setting=space.TREE_SETTING) from None
        msg = (
            f"{archive}: cannot extract it into {dest} as {fmt} ({exc}). If the archive is "
            "damaged, delete it and build again; else check the free space there."
        )
        raise BuildError(msg) from exc
    writer.require_some(root)


def _prefix(root: str) -> str:
    """The member-name prefix of `root` (the folder kept, stripped): "" for the whole archive."""
    return root.strip("/") + "/" if root.strip("/") else ""


def _file_mode(mode: int) -> int:
    """A file's mode: 0755 when the archive marks it executable by anyone, else 0644."""
    return 0o755 if mode & 0o111 else 0o644


def link_stays_inside(path: str, link_target: str) -> bool:
    """Whether a symlink at relative `path` pointing to `link_target` stays in its tree."""
    if link_target.startswith("/"):
        return False
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), link_target))
    return resolved != ".." and not resolved.startswith("../")


def _untar(archive: Path, mode: Literal["r:gz", "r:xz"], prefix: str, writer: _Writer) -> None:
    with tarfile.open(archive, mode) as tar:
        for member in tar:
            name = writer.relative(member.name, prefix)
            if name is None:
                continue
            if member.isdir():
                writer.folder(name)
            elif member.issym():
                writer.symlink(name, member.linkname)
            elif member.islnk():
                source = writer.relative(member.linkname, prefix)
                if source is None:
                    writer.refuse(member.name, f"is a hard link to {member.linkname!r}")
                writer.hardlink(name, source)
            elif member.isreg():
                writer.file(name, member.mode, _extracted(tar, member), member.size)


def _extracted(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
    def opened() -> IO[bytes]:
        data = tar.extractfile(member)
        assert data is not None  # a regular member always has data
        return data

    return opened


def _unzip(archive: Path, prefix: str, writer: _Writer | Tree) -> None:
    with zipfile.ZipFile(archive) as zf:
        _unzip_members(zf, prefix, writer)


def _unzip_members(zf: zipfile.ZipFile, prefix: str, writer: _Writer | Tree) -> None:
    for info in zf.infolist():
        name = writer.relative(info.filename, prefix)
        if name is None:
            continue
        mode = info.external_attr >> 16  # the Unix st_mode, 0 when made on Windows
        if info.is_dir() or stat.S_ISDIR(mode):
            writer.folder(name)
        elif stat.S_ISLNK(mode):
            writer.symlink(name, zf.read(info).decode())
        elif stat.S_IFMT(mode) in (0, stat.S_IFREG):
            writer.file(name, mode, _inflated(zf, info), info.file_size)


def _inflated(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], IO[bytes]]:
    """Opens member `info`'s bytes: a stored or deflated member is read raw from the archive
    and inflated with ISA-L (python-isal: node's wheel, 5,786 members and 198 MB, in 0.5 s
    against zipfile's 1.0 s), its CRC checked as zipfile would; any other (bzip2, lzma, an
    encrypted member) is left to zipfile."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 1:
        return functools.partial(zf.open, info)
    archive = zf.filename
    assert archive is not None  # opened from a path

    def opened() -> IO[bytes]:
        with Path(archive).open("rb") as raw:
            raw.seek(info.header_offset)
            header = raw.read(_LOCAL_HEADER.size)
            magic, *_, name_len, extra_len = _LOCAL_HEADER.unpack(header)
            if magic != b"PK\x03\x04":
                msg = f"member {info.filename}: no local header at {info.header_offset}"
                raise zipfile.BadZipFile(msg)
            raw.seek(name_len + extra_len, os.SEEK_CUR)
            data = raw.read(info.compress_size)
        if info.compress_type == zipfile.ZIP_DEFLATED:
            try:
                data = isal_zlib.decompress(data, wbits=-15)
            except ISAL_ERROR as exc:
                msg = f"member {info.filename}: {exc}"
                raise zipfile.BadZipFile(msg) from exc
        if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
            msg = f"member {info.filename}: its bytes do not match the archive's size and CRC"
            raise zipfile.BadZipFile(msg)
        return io.BytesIO(data)

    return opened


# a zip member's local header: signature, versions, flags, method, time, date, CRC, sizes,
# then the lengths of the name and the extra field that come before the data
_LOCAL_HEADER = struct.Struct("<4s5HL2L2H")


class _Members:
    """What every way of unpacking checks: member names stay inside the archive's root."""

    def __init__(self, dest: Path, archive: Path) -> None:
        self.dest = dest
        self.archive = archive
        self.wrote = False

    def relative(self, name: str, prefix: str) -> str | None:
        """`name` below `prefix` with the prefix stripped, None when outside it or the root."""
        clean = name
        while clean.startswith("./"):
            clean = clean[2:]
        parts = clean.rstrip("/").split("/")
        if clean.startswith("/") or ".." in parts:
            self.refuse(name, "leaves the archive")
        clean = "/".join(p for p in parts if p not in ("", "."))
        if not prefix:
            return clean or None
        if not (clean + "/").startswith(prefix) or clean + "/" == prefix:
            return None
        return clean[len(prefix) :]

    def refuse(self, name: str, problem: str) -> NoReturn:
        msg = (
            f"{self.archive}: refusing member {name!r}: it {problem} (a path outside "
            f"{self.dest} is never written). The archive is broken or malicious; check its source."
        )
        raise BuildError(msg)

    def require_some(self, root: str) -> None:
        """Refuse an archive with nothing under `root`: the lock no longer matches it."""
        if _prefix(root) and not self.wrote:
            msg = f"{self.archive}: the archive holds nothing under {root!r}; run `sandbox lock`."
            raise BuildError(msg)


class _Writer(_Members):
    """Creates entries under `dest`, refusing any that would leave it."""

    def __init__(self, dest: Path, archive: Path) -> None:
        super().__init__(dest, archive)
        self.real_dest = Path(os.path.realpath(dest))
        # Folders found to be real folders inside dest, reached through no symlink (node's
        # wheel: 5,800 members in ~1,000 folders), so not resolved again for every member.
        self._checked: set[str] = set()

    def folder(self, name: str) -> None:
        path = self._place(name)
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            path.unlink()
        path.mkdir(mode=0o755, exist_ok=True)
        path.chmod(0o755)
        self.wrote = True

    def file(self, name: str, mode: int, data: Callable[[], IO[bytes]], size: int) -> None:
        path = self._place(name)
        self._clear(path)
        with data() as source, path.open("xb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        path.chmod(_file_mode(mode))
        self.wrote = True

    def symlink(self, name: str, link_target: str) -> None:
        if not link_stays_inside(name, link_target):
            self.refuse(name, f"is a symlink to {link_target!r}, outside the tree")
        path = self._place(name)
        self._clear(path)
        path.symlink_to(link_target)
        self._forget(path)
        self.wrote = True

    def hardlink(self, name: str, source: str) -> None:
        origin = self._place(source)
        if not origin.is_file() or origin.is_symlink():
            self.refuse(name, f"is a hard link to {source!r}, which is not an extracted file")
        path = self._place(name)
        self._clear(path)
        path.hardlink_to(origin)
        self.wrote = True

    def _place(self, name: str) -> Path:
        """dest/name, after checking its folder (with symlinks resolved) is inside dest."""
        path = self.dest / name
        if str(path.parent) in self._checked:
            return path
        parent = Path(os.path.realpath(path.parent))
        if parent != self.real_dest and not parent.is_relative_to(self.real_dest):
            self.refuse(name, "would be written through a symlink that leaves the tree")
        missing = []
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for folder in reversed(missing):  # 0755 whatever the umask: any UID must read it
            folder.mkdir()
            folder.chmod(0o755)
        resolved = Path(os.path.realpath(path.parent))
        if resolved.relative_to(self.real_dest) == path.parent.relative_to(self.dest):
            # No symlink on the way: only a later symlink or removal at this folder or one
            # above it can change where it leads, and those forget it (`_forget`).
            self._checked.add(str(path.parent))
        return path

    def _forget(self, path: Path) -> None:
        """Check `path` and everything below it again when next written to."""
        top = str(path)
        self._checked = {f for f in self._checked if f != top and not f.startswith(top + "/")}

    def _clear(self, path: Path) -> None:
        """Later members replace earlier ones, as tar does; never write through a symlink."""
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
            self._forget(path)


def walk(root: Path) -> Iterator[Path]:
    """Every path under `root`, sorted, without following symlinks."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        base = Path(folder)
        for name in sorted([*dirs, *files]):
            yield base / name


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One path of a `Tree`: a folder, a file (its bytes still in the archive) or a symlink,
    with the mode `unpack` would give it."""

    kind: Literal["folder", "file", "symlink"]
    mode: int = 0o755
    size: int = 0
    data: Callable[[], IO[bytes]] | None = None
    target: str = ""


class Tree(_Members):
    """What `unpack` would write under a folder, kept as a listing: names (relative to the
    folder) -> `Entry`, the files' bytes read from the archive only when a layer is written
    (`store/layers.tree_layer`). The same members are refused, later members replace earlier
    ones, and missing folders are made 0755, as on disk. A member written through a symlink
    of the tree raises `NotListable`: the caller unpacks to disk instead."""

    def __init__(self, archive: Path, dest: Path) -> None:
        super().__init__(dest, archive)
        self.entries: dict[str, Entry] = {}

    def folder(self, name: str) -> None:
        self._parents(name)
        entry = self.entries.get(name)
        if entry is None or entry.kind != "folder":  # a file or link there is replaced
            self.entries[name] = Entry(kind="folder")
        self.wrote = True

    def file(self, name: str, mode: int, data: Callable[[], IO[bytes]], size: int) -> None:
        self._put(name, Entry(kind="file", mode=_file_mode(mode), size=size, data=data))

    def symlink(self, name: str, link_target: str) -> None:
        if not link_stays_inside(name, link_target):
            self.refuse(name, f"is a symlink to {link_target!r}, outside the tree")
        self._put(name, Entry(kind="symlink", mode=0o777, target=link_target))

    def hardlink(self, name: str, source: str) -> None:
        raise NotListable(name)  # zip archives have none; tar archives are unpacked to disk

    def remove(self, name: str) -> None:
        self._clear(name)

    def is_file(self, name: str) -> bool:
        """Whether `name` is a file, following symlinks inside the tree (as Path.is_file)."""
        for _ in range(40):
            entry = self.entries.get(name)
            if entry is None or entry.kind != "symlink":
                return entry is not None and entry.kind == "file"
            name = posixpath.normpath(posixpath.join(posixpath.dirname(name), entry.target))
        return False

    def _put(self, name: str, entry: Entry) -> None:
        self._parents(name)
        self._clear(name)
        self.entries[name] = entry
        self.wrote = True

    def _parents(self, name: str) -> None:
        parts = name.split("/")
        for end in range(1, len(parts)):
            above = "/".join(parts[:end])
            entry = self.entries.get(above)
            if entry is None:
                self.entries[above] = Entry(kind="folder")
            elif entry.kind == "symlink":
                raise NotListable(name)
            elif entry.kind == "file":
                msg = f"{self.archive}: {name!r} is below the file {above!r}"
                raise BuildError(msg)

    def _clear(self, name: str) -> None:
        if self.entries.pop(name, Entry(kind="file")).kind == "folder":
            below = name + "/"
            for other in [n for n in self.entries if n.startswith(below)]:
                del self.entries[other]


class NotListable(Exception):
    """An archive a `Tree` does not list (a member written through one of its symlinks, a
    hard link): unpack it to disk."""


@contextmanager
def zip_tree(archive: Path, dest: Path, *, root: str = "") -> Iterator[Tree]:
    """The `Tree` of what `unpack(archive, dest, fmt="zip", root=root)` would write (`dest`
    is named in refusals only); the archive stays open (the files' bytes are read from it)
    until the block ends."""
    tree = Tree(archive, dest)
    try:
        with zipfile.ZipFile(archive) as zf:
            _unzip_members(zf, _prefix(root), tree)
            tree.require_some(root)
            yield tree
    except (zipfile.BadZipFile, EOFError) as exc:
        msg = (
            f"{archive}: cannot read it as zip ({exc}). If it is damaged, delete it and build again"
        )
        raise BuildError(msg) from exc
