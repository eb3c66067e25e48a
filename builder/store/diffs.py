"""A container's diff as the engine gives it, before `layers.normalize_tar` makes it a layer.

Read straight from the container's overlay2 upper dir when the engine keeps it on this machine
(`UpperDir`, no commit), else taken from a `docker save` archive of the committed
container (`top_layer_of_saved_image`); `layers_of_saved_image` gives every layer of one.
"""

from __future__ import annotations

import json
import os
import stat
import tarfile
from pathlib import Path
from typing import IO

from builder.core import space
from builder.core.errors import BuildError
from builder.store.layers import walk_sorted


def top_layer_of_saved_image(archive: Path, dest: Path) -> Path:
    """Extract the last layer of a `docker save` archive (the diff a commit captured)."""
    with tarfile.open(archive) as saved:
        manifest = json.load(_member(saved, "manifest.json"))
        name = manifest[0]["Layers"][-1]
        with space.room_for(dest, what="writing a layer"), dest.open("wb") as out:
            out.write(_member(saved, name).read())
    return dest


class UpperDir:
    """A container's overlay2 upper dir as the diff `docker commit` would record: overlay
    whiteouts (0/0 character devices) become `.wh.<name>` entries, opaque folders get a
    `.wh..wh..opq` entry, extended attributes (file capabilities) are kept as SCHILY.xattr
    records. Read as a tarfile is (`getmembers`, `extractfile`), so `normalize_tar` makes the
    layer from it in one pass: no raw tar of the diff is written and read back (the system
    layer: 151 MB, 0.5 s)."""

    def __init__(self, upper: Path) -> None:
        self._members: list[tarfile.TarInfo] = []
        self._paths: dict[str, Path] = {}
        # gettarinfo keeps an inode table: a second name of a file becomes a hard link
        with tarfile.open(os.devnull, "w", format=tarfile.PAX_FORMAT) as probe:
            for name, where in walk_sorted(str(upper)):
                path = Path(where)
                st = path.lstat()
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    folder, _, base = name.rpartition("/")
                    self._members.append(_empty(f"{folder}/.wh.{base}".lstrip("/"), st))
                    continue
                info = probe.gettarinfo(str(path), arcname=name)
                info.pax_headers = _xattrs(path)
                self._members.append(info)
                self._paths[info.name] = path
                if path.is_dir() and not path.is_symlink() and _opaque(path):
                    self._members.append(_empty(f"{name}/.wh..wh..opq", st))

    def getmembers(self) -> list[tarfile.TarInfo]:
        return list(self._members)

    def extractfile(self, member: tarfile.TarInfo) -> IO[bytes] | None:
        path = self._paths.get(member.name)
        return path.open("rb") if member.isreg() and path is not None else None


def _xattrs(path: Path) -> dict[str, str]:
    found = {}
    for key in os.listxattr(path, follow_symlinks=False):
        if key.startswith("trusted.overlay."):
            continue
        value = os.getxattr(path, key, follow_symlinks=False)
        found[f"SCHILY.xattr.{key}"] = value.decode("utf-8", "surrogateescape")
    return found


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def _empty(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = int(st.st_mtime)
    return info


def layers_of_saved_image(archive: Path, dest_dir: Path) -> list[Path]:
    """Extract every layer of a `docker save` archive, bottom first."""
    paths = []
    with tarfile.open(archive) as saved:
        manifest = json.load(_member(saved, "manifest.json"))
        for index, name in enumerate(manifest[0]["Layers"]):
            path = dest_dir / f"layer-{index:03d}.tar"
            with space.room_for(path, what="writing a layer"), path.open("wb") as out:
                out.write(_member(saved, name).read())
            paths.append(path)
    return paths


def _member(archive: tarfile.TarFile, name: str) -> IO[bytes]:
    extracted = archive.extractfile(name)
    if extracted is None:
        msg = f"docker save archive lacks {name}"
        raise BuildError(msg)
    return extracted
