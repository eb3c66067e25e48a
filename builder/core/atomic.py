"""Files written whole or not at all: a temp file beside the target, synced, then renamed.

Kept apart from the modules that use it (the cache, the lock, the overlay, the no-op record)
so that using it imports nothing of theirs; `tempfile` (4 ms) is imported only to write, so
the no-op replay can call `write_atomic` on a file that already holds the bytes for free.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (2.5 ms)
if TYPE_CHECKING:
    from typing import BinaryIO


def write_atomic(path: Path, data: bytes) -> None:
    """`data` at `path`, whole or not at all; a file that already holds exactly `data` is
    left alone (a no-op build rewrites nothing, and pays no fsync)."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return
    except OSError:
        pass  # missing or unreadable: write it
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as out:
        out.write(data)


@contextmanager
def atomic_file(path: Path, *, scratch: Path | None = None) -> Iterator[BinaryIO]:
    """A file to write that appears at `path` whole (synced, mode 644) when the block ends,
    and not at all if it fails. The temp file is made in `scratch` (default: path's folder),
    which must be on path's filesystem."""
    import tempfile

    folder = scratch or path.parent
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    except BaseException as exc:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            from builder.core import space  # only on a full disk

            full = space.full_disk(Path(tmp), what=f"writing {path}")
            Path(tmp).unlink(missing_ok=True)
            raise full from None
        Path(tmp).unlink(missing_ok=True)
        raise
