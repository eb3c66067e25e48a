"""A full disk, said plainly: which folder filled up, how much it needed, what to do.

The big writes of a build (a base image saved from the engine, layer tars, the trees they are
packed from, downloads) go through `room_for`, which turns "No space left on device" (or a
full quota) into a CacheError (exit 6) naming the folder, the bytes free there, what the
write had put there when the disk filled (so at least that much more is needed) and the
setting that moves the folder. The callers' own cleanup then removes the partial file, so a
full disk leaves no half-written layer, entry, lock or overlay, and the next build, once
there is room, starts from what was whole.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from builder.errors import CacheError

FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
CACHE_SETTING = "--cache-dir (or SANDBOX_CACHE_DIR)"
TREE_SETTING = "SANDBOX_TREE_DIR"


def is_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in FULL


@contextmanager
def room_for(
    dest: Path, *, what: str, setting: str = CACHE_SETTING, need: int | None = None
) -> Iterator[None]:
    """Run the block that writes `dest` (a file, or a folder it fills; about `need` bytes
    when known); a full disk there is a CacheError saying so."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in FULL:
            raise
        raise full_disk(dest, what=what, setting=setting, need=need) from None


def full_disk(
    dest: Path, *, what: str, setting: str = CACHE_SETTING, need: int | None = None
) -> CacheError:
    mount = _mount_point(dest)
    written = _bytes_in(dest)
    try:
        usage = shutil.disk_usage(mount)
        room = f"{usage.free:,} bytes free of {usage.total:,}"
    except OSError:
        room = "its free space unknown"
    needed = (
        f"It needs about {need:,} bytes there"
        if need
        else f"It had written {written:,} bytes when the disk filled and needs more than that"
    )
    msg = (
        f"{what}: no space left on the filesystem at {mount} ({room}), writing {dest}. "
        f"{needed}: free space there (`sandbox gc` drops what no build uses) or point "
        f"{setting} at a folder with room, then run the command again. Nothing "
        "half-written was kept"
    )
    return CacheError(msg)


def _mount_point(path: Path) -> Path:
    """The folder `path`'s filesystem is mounted on (the top folder on the same device)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        device = path.stat().st_dev
        while path != path.parent and path.parent.stat().st_dev == device:
            path = path.parent
    except OSError:
        pass
    return path


def _bytes_in(dest: Path) -> int:
    """The size of the file `dest`, or of every file under the folder `dest`."""
    try:
        if not dest.is_dir():
            return dest.stat().st_size
        return sum(
            (Path(top) / name).lstat().st_size for top, _, files in os.walk(dest) for name in files
        )
    except OSError:
        return 0
