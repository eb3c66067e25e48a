"""A `sandbox build` with nothing to do, answered from what the last build recorded.

Even with nothing to build, the real path reads sandbox.toml and its project files, the 76 KB
lock, every cache entry, and asks Docker a few questions: ~50 ms of imports and ~15 ms of work
on top of Python's own start. Docker's no-op build takes ~70 ms in all. So every build
records in cache/noop.json what the next plain `sandbox build` would print if nothing
changed (every node `cached`; rendered by the same code from the same result),
together with a stat (size, mtime, inode) of every file that answer depends on: sandbox.toml,
sandbox.lock, the project files the spec hashes, the cache entries and layers, the SBOM, the
build record, exported trees, and builder's own code. The overlay a plain build writes is
kept in the record itself and written back when the file differs (after a publish, which pins
the registry digest there).

`replay` checks all of them, then asks the daemon whether it still has the image under both
tags (one request over the unix socket), puts the overlay back if needed, and only then
prints the recorded answer. Anything
missing, different or unreadable, another build holding the cache, a remote daemon: it
returns False and the real build runs (and records anew). It imports nothing of the spec,
lock or engine machinery, which is the point.

A stat is only trusted for an input last changed well before it was taken (RECENT_NS): an
input edited within the filesystem's timestamp granularity of the stat could change again
without its mtime moving (git's "racy" files), so then no record is kept and the next build
records instead.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from builder.core.atomic import write_atomic
from builder.core.layout import CACHE_LOCK, NOOP_FILE
from builder.engine import dockersock, endpoint

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (2.5 ms)
if TYPE_CHECKING:
    from typing import Any

RECORD = NOOP_FILE  # in the cache dir
VERSION = 1
RECENT_NS = 2_000_000_000  # coarser than any filesystem's mtime granularity (FAT: 2 s)


def replay(*, spec_file: Path, cache_dir: Path, as_json: bool) -> bool:
    """Print the recorded result of a no-op build when it still holds; True when printed."""
    started = time.monotonic()
    try:
        record = json.loads((cache_dir / RECORD).read_bytes())
    except (OSError, ValueError):
        return False
    socket_path = dockersock.local_socket()
    if not isinstance(record, dict) or record.get("context") != _context(spec_file, cache_dir):
        return False
    if socket_path is None:
        return False
    try:
        with (cache_dir / CACHE_LOCK).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)  # a build writing here: no replay
            if record["files"] != _stats(Path(p) for p in record["files"]):
                return False
            if not _engine_has(socket_path, record["image"], record["tags"]):
                return False
            # Back to what a plain build writes, if a publish pinned its digest there.
            write_atomic(Path(record["overlay"]), record["overlay_text"].encode())
    except (OSError, KeyError, TypeError):
        return False
    sys.stderr.write(f"{record['stderr']} in {time.monotonic() - started:.1f}s\n")
    sys.stderr.flush()
    sys.stdout.write(record["json" if as_json else "text"] + "\n")
    return True


def record(
    *,
    spec_file: Path,
    cache_dir: Path,
    inputs: list[Path],
    outputs: Iterable[Path],
    overlay: tuple[Path, str],
    image_id: str,
    tags: list[str],
    stderr: str,
    text: str,
    as_json: dict[str, Any],
) -> None:
    """Write cache/noop.json for the next build to replay (the caller holds the cache lock).

    `inputs` are the files a person edits (spec, lock, project files): a record is only kept
    when all of them are older than it. `outputs` are what the build wrote or reused. The
    overlay (path, text) is not checked but written back by the replay when it differs: a
    publish pins the registry digest there, and the plain build after it, the image ID.
    """
    path = cache_dir / RECORD
    checked_at = time.time_ns()
    stats = _stats([*inputs, *outputs, *_code_files()])
    recent = [p for p in inputs if (stats[str(p)] or [0, checked_at])[1] > checked_at - RECENT_NS]
    if None in stats.values() or recent:
        path.unlink(missing_ok=True)
        return
    data = {
        "context": _context(spec_file, cache_dir),
        "files": stats,
        "image": image_id,
        "tags": tags,
        "overlay": str(overlay[0]),
        "overlay_text": overlay[1],
        "stderr": stderr,
        "text": text,
        "json": json.dumps(as_json, indent=2),
    }
    write_atomic(path, json.dumps(data).encode())


def _context(spec_file: Path, cache_dir: Path) -> list[str]:
    """What a record is only valid for: this spec, this cache, this daemon."""
    return [str(VERSION), str(spec_file), str(cache_dir), endpoint.current().host]


def _stats(paths: Iterable[Path]) -> dict[str, list[int] | None]:
    found: dict[str, list[int] | None] = {}
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            found[str(path)] = None
            continue
        found[str(path)] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return found


def _code_files() -> Iterator[Path]:
    """builder's own modules: another version of the tool may print another answer."""
    for folder, _, names in os.walk(Path(__file__).parent.parent):  # builder/
        for name in sorted(names):
            if name.endswith(".py"):
                yield Path(folder, name)


def _engine_has(socket_path: str, image_id: str, tags: list[str]) -> bool:
    status, body = dockersock.request(socket_path, "GET", f"/images/{image_id}/json")
    if status != 200:
        return False
    found = json.loads(body)
    return bool(found.get("Id") == image_id and set(tags) <= set(found.get("RepoTags") or []))
