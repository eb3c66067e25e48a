"""A container's diff as the engine gives it, before `layers.normalize_tar` makes it a layer.

Read straight from the container's overlay2 upper dir when the engine keeps it on this machine
(`tar_overlay_upper`, no commit), else taken from a `docker save` archive of the committed
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


def tar_overlay_upper(upper: Path, dest: Path) -> Path:
    """The diff of a container as `docker commit` would record it, read straight from its
    overlay2 upper dir: overlay whiteouts (0/0 character devices) become `.wh.<name>` entries,
    opaque folders get a `.wh..wh..opq` entry, extended attributes (file capabilities) are
    kept as SCHILY.xattr records. Not normalized: `normalize_tar` does that next."""
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as out:
        for name, where in walk_sorted(str(upper)):
            path = Path(where)
            st = path.lstat()
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                folder, _, base = name.rpartition("/")
                _add_empty(out, f"{folder}/.wh.{base}".lstrip("/"), st)
                continue
            info = out.gettarinfo(str(path), arcname=name)
            info.pax_headers = _xattrs(path)
            if info.isreg():
                with path.open("rb") as data:
                    out.addfile(info, data)
            else:
                out.addfile(info)
            if path.is_dir() and not path.is_symlink() and _opaque(path):
                _add_empty(out, f"{name}/.wh..wh..opq", st)
    return dest


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


def _add_empty(out: tarfile.TarFile, name: str, st: os.stat_result) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = int(st.st_mtime)
    out.addfile(info)


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
