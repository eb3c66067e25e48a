"""A full disk, said plainly: which folder filled up, how much it needed, what to do.

The big writes of a build (a base image saved from the engine, layer tars, the trees they are
packed from, downloads) go through `room_for`, which turns "No space left on device" (or a
full quota) into a CacheError (exit 6) naming the folder, the bytes free there, what the
write had put there when the disk filled (so at least that much more is needed) and the
setting that moves the folder. The callers' own cleanup then removes the partial file, so a
full disk leaves no half-written layer, entry, lock or overlay, and the next build, once
there is room, starts from what was whole.

A build step (a container) that fills a disk fails with its tool's words ("No space left on
device", npm's ENOSPC, apt's "You don't have enough free space in ..."): `step_full` reads
them in the step's log and tells which disk it was. A path they name under a folder of ours
that the step writes straight into (a bind mount: the prefix tree, a download cache) is
that folder, with the setting that moves it; a path elsewhere is the container's own
filesystem, which lives in the engine's storage (its data root), so the engine is named
with how to free room there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from builder.core.errors import CacheError

FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
CACHE_SETTING = "--cache-dir (or SANDBOX_CACHE_DIR)"
TREE_SETTING = "SANDBOX_TREE_DIR"
DOWNLOAD_SETTING = "SANDBOX_DOWNLOAD_DIR"
# What tools print when a write finds no room: the C library's words (tar, dpkg, cp, pip's
# OSError), Node's error codes (npm, pnpm), apt's own check before it downloads or unpacks.
_NO_SPACE = re.compile(
    r"no space left on device|\bENOSPC\b|\[Errno 28\]|disk quota exceeded|\bEDQUOT\b"
    r"|you don't have enough free space in",
    re.IGNORECASE,
)
_PATH = re.compile(r"(?<![\w.])(/[^\s'\":,;()\[\]]*)")
_NAMED_PATH = re.compile(r"\b(?:path|dest)\s+(/\S+)")  # npm's `npm error path /...` line
_TAIL = 40  # lines of a step's log read for the reason it failed
ALMOST_FULL = 1 << 20  # bytes free under which a folder counts as the one that filled


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
    dest: Path,
    *,
    what: str,
    setting: str = CACHE_SETTING,
    need: int | None = None,
    log: Path | None = None,
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
    return CacheError(msg + (f". Its log: {log}" if log is not None else ""))


def step_full(
    output: str, *, what: str, log: Path, bound: Mapping[str, tuple[str, str]], storage: str
) -> CacheError | None:
    """The error for a failed step whose output's tail says a disk was full, else None.

    `bound` maps each folder the step wrote straight into (its path in the container) to
    (the folder of ours it is, the setting that moves that folder); `storage` names the
    engine's storage, where everything else the container writes lives."""
    tail = output.splitlines()[-_TAIL:]
    lines = [line for line in tail if _NO_SPACE.search(line)]
    if not lines:
        return None
    after = tail[tail.index(lines[0]) :]
    found = [*(m for line in lines for m in _PATH.findall(line))]
    found += [m for line in after for m in _NAMED_PATH.findall(line)]
    named = [m.rstrip("/.") or "/" for m in found]
    for path in named:
        for target, (source, setting) in sorted(bound.items(), key=lambda kv: -len(kv[0])):
            if path == target or path.startswith(target.rstrip("/") + "/"):
                return full_disk(Path(source), what=what, setting=setting, log=log)
    if not named:  # no path said: a folder of ours that is (all but) full is the one
        for source, setting in bound.values():
            with contextlib.suppress(OSError):
                if shutil.disk_usage(source).free < ALMOST_FULL:
                    return full_disk(Path(source), what=what, setting=setting, log=log)
    return engine_full(what=what, storage=storage, log=log, said=lines[-1].strip())


def says_full(text: str) -> bool:
    """Whether an engine's or a tool's message says a disk was full."""
    return _NO_SPACE.search(text) is not None


def engine_full(*, what: str, storage: str, log: Path | None = None, said: str = "") -> CacheError:
    """The error for the engine's own disk (its data root) being full."""
    words = f" ({said[:200]})" if said else ""
    where = f" Its log: {log}." if log is not None else ""
    msg = (
        f"{what}: no space left in {storage}{words}. That is the engine's disk, not the "
        "cache dir: free space there (`docker system df` shows what takes it; `sandbox gc` "
        "removes the images and step containers no build of this project uses, `docker "
        "image prune` and `docker builder prune` others) or move the engine's data root to "
        "a disk with room (`data-root` in its daemon.json), then run the command again. "
        f"Nothing half-written was kept in the cache.{where}"
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
