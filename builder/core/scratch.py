"""Where the trees a layer is packed from are made: in memory when the machine has room.

A prefix node's tree (an unpacked runtime, an npm or pip install) is written once, packed
into a layer tar in the cache, then removed. On disk those writes compete with the layer
tars and with `docker load` for the same journal: unpacking node's 5,800 files took 2.9 to
4.7 s on this machine's ext4 while other writes were pending, 1.4 s on /dev/shm. So trees go
to a tmpfs when one is mounted, writable, executable (install scripts run from the tree)
and has MIN_FREE bytes available; otherwise to the cache's tmp/. `SANDBOX_TREE_DIR` names
another folder; set to an empty string it turns the memory folder off.

Each cache dir gets its own folder there (named by a digest of its path), emptied with the
cache's tmp/ while the cache lock is held, so concurrent builds of other projects are never
touched.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

ENV = "SANDBOX_TREE_DIR"
MEMORY = Path("/dev/shm")
MIN_FREE = 4 << 30  # bytes: room for a big tool tree (codex: 423 MB) several times over


def tree_root(cache_root: Path) -> Path | None:
    """The folder for this cache's trees outside the cache, or None for the cache's tmp/."""
    chosen = os.environ.get(ENV)
    if chosen is not None:
        base = Path(chosen) if chosen else None
    else:
        base = MEMORY if _roomy_tmpfs(MEMORY) else None
    if base is None:
        return None
    digest = hashlib.sha256(str(cache_root.resolve()).encode()).hexdigest()[:16]
    return base / f"sandbox-builder-{os.getuid()}" / digest


def _roomy_tmpfs(path: Path) -> bool:
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    if st.f_flag & (os.ST_RDONLY | os.ST_NOEXEC):
        return False
    if st.f_bavail * st.f_frsize < MIN_FREE:
        return False
    return _fs_type(path) == "tmpfs"


def _fs_type(path: Path) -> str | None:
    """The filesystem type of the mount point `path` (from /proc/self/mounts)."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and fields[1] == str(path):
            return fields[2]
    return None
