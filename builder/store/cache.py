"""The build cache: content-addressed layers and one entry per node key.

Layout under the cache dir (`--cache-dir`, `SANDBOX_CACHE_DIR`, else `cache/` beside
sandbox.toml):

    layers/<hex>.tar         normalized layer tars, named by their diff ID
    nodes/<hex>.json         one entry per node key: its layers and the env it adds
    logs/<node>.log          the last build log of each node
    tmp/                     scratch for work in progress (emptied by gc)
    overlay.json             the orchestrator overlay of the last build
    applied.json             the keys `overlay apply` set, per orchestrator URL (applied.py)
    noop.json                what the next no-op build prints, and what that rests on (noop.py)
    stacks.json              the layer stacks of the engine's images (loading.py)
    .lock                    held while a build writes here

Every write is atomic (a temp file then `os.replace`), so a killed build leaves either a
whole entry or none. An entry is written only after its layers, so an entry never names a
missing layer.

The user-wide store (`default_store_dir()`: `SANDBOX_STORE_DIR`, else `store/` in the user's
cache dir beside the downloads) is a second level with the same `layers/` and `nodes/`.
Keys are content hashes, so a node built by one project is the same node in every other:
`put` also links the entry's layers into the store and then writes its entry there, and
`entry` falls back to the store when the project cache lacks a key, linking the layers in
(hard links on one filesystem, else a copy to a temp file under the destination's `tmp/`
and a rename) and then writing the project's entry. The same atomic writes and order apply
to the store, so builds of several projects at once never tear it. Sharing is best effort:
a store that cannot be read or written is skipped silently and the build goes on from the
project cache alone. Nothing ever deletes from the store (`sandbox gc` works on the project
cache only); removing the folder clears it.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.core import scratch
from builder.core.atomic import atomic_file, write_atomic
from builder.core.errors import CacheError
from builder.core.keys import canonical_bytes
from builder.core.layout import (
    CACHE_LAYERS,
    CACHE_LOCK,
    CACHE_LOGS,
    CACHE_NODES,
    CACHE_TMP,
    ENTRIES_FILE,
)

ENTRY_VERSION = 1
_STALE_TEMP = 3600.0  # seconds after which a store temp file is left over from a killed copy


@dataclass(frozen=True, kw_only=True)
class Layer:
    diff_id: str
    size: int


@dataclass(frozen=True, kw_only=True)
class NodeEntry:
    """What a built node left in the cache."""

    name: str
    key: str
    layers: tuple[Layer, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": ENTRY_VERSION,
            "name": self.name,
            "key": self.key,
            "layers": [{"diff_id": la.diff_id, "size": la.size} for la in self.layers],
            "env": dict(self.env),
            "seconds": self.seconds,
        }


def _load_entry(path: Path) -> NodeEntry | None:
    """The entry stored at `path`; None when there is none or it has another version.

    Raises OSError or ValueError when the file cannot be read or is not a whole entry.
    """
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    if not isinstance(data, dict):
        msg = "not a JSON object"
        raise ValueError(msg)
    if data.get("version") != ENTRY_VERSION:
        return None
    try:
        return NodeEntry(
            name=data["name"],
            key=data["key"],
            layers=tuple(Layer(diff_id=la["diff_id"], size=la["size"]) for la in data["layers"]),
            env=data.get("env", {}),
            seconds=data.get("seconds", 0.0),
        )
    except (KeyError, TypeError) as exc:
        msg = f"missing or malformed field {exc}"
        raise ValueError(msg) from None


def _entry_bytes(entry: NodeEntry) -> bytes:
    return json.dumps(entry.to_json(), indent=1).encode()


def _link_or_copy(src: Path, dest: Path, *, scratch: Path) -> None:
    """Give `dest` the bytes of `src`: a hard link when both are on one filesystem, else a
    copy into `scratch` (on dest's filesystem) renamed into place. Layers are named by their
    content, so a file already at `dest` is the same and is kept."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except FileExistsError:
        return
    except OSError:
        pass  # another filesystem (EXDEV), or links not allowed here: copy instead
    else:
        return
    scratch.mkdir(parents=True, exist_ok=True)
    with atomic_file(dest, scratch=scratch) as out, src.open("rb") as data:
        shutil.copyfileobj(data, out, 1 << 20)


def _mounts_under(folder: Path) -> list[str]:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    points = [line.split()[1].replace("\\040", " ") for line in lines if len(line.split()) > 1]
    return [p for p in points if p.startswith(str(folder) + "/")]


def default_download_dir() -> Path:
    """Downloads are content-addressed, so every project of this user shares them."""
    env = os.environ.get("SANDBOX_DOWNLOAD_DIR")
    return Path(env) if env else _user_cache() / "downloads"


def default_store_dir() -> Path:
    """Built nodes shared by all the user's projects (a node's key is a content hash)."""
    env = os.environ.get("SANDBOX_STORE_DIR")
    return Path(env) if env else _user_cache() / "store"


def _user_cache() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("sandbox-builder"))


class Cache:
    def __init__(
        self, root: Path, downloads: Path | None = None, store: Path | None = None
    ) -> None:
        self.root = root
        # Resolved on first use: a no-op build needs neither (nor platformdirs' import).
        self._downloads = downloads
        self._store = store
        self._trees: Path | None = None

    def ensure(self) -> None:
        try:
            for sub in (CACHE_LAYERS, CACHE_NODES, CACHE_LOGS, CACHE_TMP):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"cache dir {self.root} is not writable ({exc.strerror}). Fix its permissions "
            msg += "or choose another with --cache-dir"
            raise CacheError(msg) from None

    @property
    def downloads(self) -> Path:
        """Content-addressed downloads and the package managers' caches, shared by all the
        user's projects (writes are atomic: temp file, then rename)."""
        if self._downloads is None:
            folder = default_download_dir()
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                msg = (
                    f"download cache {folder} is not writable ({exc.strerror}). Fix its "
                    "permissions or point SANDBOX_DOWNLOAD_DIR elsewhere"
                )
                raise CacheError(msg) from None
            self._downloads = folder
        return self._downloads

    @property
    def store(self) -> Path:
        """The user-wide store of built nodes this cache shares with the user's other projects."""
        if self._store is None:
            self._store = default_store_dir()
        return self._store

    @property
    def lock_file(self) -> Path:
        return self.root / CACHE_LOCK

    def layer_path(self, diff_id: str) -> Path:
        return self.root / CACHE_LAYERS / (diff_id.removeprefix("sha256:") + ".tar")

    def layer_entries(self, layers: list[Layer]) -> dict[str, int]:
        """Diff ID -> how many entries (files, folders, links) each layer tar holds: what
        registering it costs besides its bytes (kinds/order.py). Counted from the tar's
        headers once, then remembered in entries.json (a count never changes: the tar is
        named by its bytes)."""
        memo = self.root / ENTRIES_FILE
        try:
            known = {str(k): int(v) for k, v in json.loads(memo.read_bytes()).items()}
        except (OSError, ValueError, AttributeError, TypeError):
            known = {}  # none yet, or unreadable: count again
        counts, changed = {}, False
        for layer in layers:
            if layer.diff_id not in known:
                known[layer.diff_id], changed = self._count_entries(layer.diff_id), True
            counts[layer.diff_id] = known[layer.diff_id]
        if changed:
            write_atomic(memo, canonical_bytes(known))
        return counts

    def _count_entries(self, diff_id: str) -> int:
        path = self.layer_path(diff_id)
        try:
            with tarfile.open(path) as tar:
                return sum(1 for _ in tar)
        except (OSError, tarfile.TarError) as exc:
            self.drop_layer(diff_id)
            msg = (
                f"cache layer {path} cannot be read as a tar ({exc}). It was removed; run the "
                "command again to rebuild the node it belongs to"
            )
            raise CacheError(msg) from None

    @property
    def logs(self) -> Path:
        """Where each step's and resolver's log is kept."""
        return self.root / CACHE_LOGS

    def log_path(self, node: str) -> Path:
        return self.logs / f"{node}.log"

    def clear_scratch(self) -> None:
        """Remove what interrupted builds left in tmp/ (call only while holding the lock).

        A killed debootstrap can leave /proc and /sys mounted inside its rootfs: those are
        unmounted first, so removing the folder never reaches into the host's /proc.
        """
        tmp = (self.root / CACHE_TMP).resolve()
        for mount in sorted(_mounts_under(tmp), reverse=True):
            import subprocess  # only after a killed debootstrap: rare

            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        if _mounts_under(tmp):
            return  # still mounted: leave it rather than delete through a mount
        trees = scratch.tree_root(self.root)
        for leftover in [*tmp.iterdir(), *(trees.iterdir() if trees and trees.is_dir() else [])]:
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)

    def scratch(self, prefix: str) -> Path:
        """A fresh folder under tmp/ for one piece of work; the caller removes it."""
        return Path(tempfile.mkdtemp(dir=self.root / CACHE_TMP, prefix=prefix))

    def tree_scratch(self, prefix: str) -> Path:
        """A fresh folder for a tree that is packed into a layer and removed: in memory when
        the machine has room (scratch.py), else under tmp/; the caller removes it."""
        if self._trees is None:
            self._trees = scratch.tree_root(self.root) or self.root / CACHE_TMP
            self._trees.mkdir(parents=True, exist_ok=True, mode=0o700)
        return Path(tempfile.mkdtemp(dir=self._trees, prefix=prefix))

    def store_layer(self, tar: Path, diff_id: str) -> Path:
        """Move a finished layer tar into place (atomic: same filesystem).

        A layer already there has the same bytes (it is named by them), so the new tar is
        dropped instead: renaming over it would make ext4 write the new file out first
        (its replace-by-rename safeguard), ~0.4 s for codex's 423 MB rebuilt unchanged.
        """
        dest = self.layer_path(diff_id)
        if _whole(dest, tar.stat().st_size):
            tar.unlink()
        else:  # none yet, or a damaged one (another size): this one takes its place
            tar.replace(dest)
        return dest

    def drop_layer(self, diff_id: str) -> None:
        """Remove a damaged layer tar, and the store's when it is the same file (a hard
        link), so that neither is used again and its node rebuilds."""
        path, shared = self.layer_path(diff_id), self._store_layer_path(diff_id)
        try:
            if self._sharing() and shared.exists() and shared.samefile(path):
                shared.unlink()
        except OSError:
            pass  # the store is best effort
        path.unlink(missing_ok=True)

    def entry(self, key: str) -> NodeEntry | None:
        """The entry for `key`, or None when it is missing or any of its layers is gone or
        has another size than the entry says (a truncated tar: the node rebuilds).

        When this cache lacks it (or one of its layers), the user-wide store is asked: a hit
        there is linked into this cache, layers first, then the entry.
        """
        path = self._entry_path(key)
        try:
            entry = _load_entry(path)
        except (OSError, ValueError) as exc:
            msg = f"corrupt cache entry {path} ({exc}). Delete it; the node will rebuild"
            raise CacheError(msg) from None
        if entry is not None and all(
            _whole(self.layer_path(la.diff_id), la.size) for la in entry.layers
        ):
            return entry
        return self._from_store(key)

    def put(self, entry: NodeEntry) -> None:
        """Record a node whose layers are in place here, and share it through the store."""
        write_atomic(self._entry_path(entry.key), _entry_bytes(entry))
        self._share(entry)

    def entry_files(self, entry: NodeEntry) -> list[Path]:
        """The files of this cache `entry` stands for: its own, then its layers'."""
        return [self._entry_path(entry.key)] + [self.layer_path(la.diff_id) for la in entry.layers]

    def _entry_path(self, key: str) -> Path:
        return self.root / CACHE_NODES / (key.removeprefix("sha256:") + ".json")

    def _store_entry_path(self, key: str) -> Path:
        return self.store / CACHE_NODES / (key.removeprefix("sha256:") + ".json")

    def _store_layer_path(self, diff_id: str) -> Path:
        return self.store / CACHE_LAYERS / (diff_id.removeprefix("sha256:") + ".tar")

    def _sharing(self) -> bool:
        try:
            return self.store.resolve() != self.root.resolve()
        except OSError:
            return False

    def _from_store(self, key: str) -> NodeEntry | None:
        """The store's entry for `key`, linked into this cache; None on a miss.

        A store entry that is damaged, names a missing or truncated layer, or cannot be
        linked in is a miss: the node builds here and its `put` rewrites the store's entry.
        """
        if not self._sharing():
            return None
        try:
            entry = _load_entry(self._store_entry_path(key))
            if entry is None or entry.key != key:
                return None
            for layer in entry.layers:
                dest = self.layer_path(layer.diff_id)
                if _whole(dest, layer.size):
                    continue
                src = self._store_layer_path(layer.diff_id)
                if src.stat().st_size != layer.size:
                    return None
                dest.unlink(missing_ok=True)  # a damaged copy here gives way to the store's
                _link_or_copy(src, dest, scratch=self.root / CACHE_TMP)
            write_atomic(self._entry_path(key), _entry_bytes(entry))
        except (OSError, ValueError):
            return None
        return entry

    def _share(self, entry: NodeEntry) -> None:
        """Put `entry` and its layers in the store too; silently skipped when it fails."""
        if not self._sharing():
            return
        scratch = self.store / CACHE_TMP
        try:
            _sweep(scratch)
            for layer in entry.layers:
                src = self.layer_path(layer.diff_id)
                _link_or_copy(src, self._store_layer_path(layer.diff_id), scratch=scratch)
            write_atomic(self._store_entry_path(entry.key), _entry_bytes(entry))
        except OSError:
            return


def _whole(layer: Path, size: int) -> bool:
    """Whether the layer tar at `layer` is there with the size its entry recorded."""
    try:
        return layer.stat().st_size == size
    except OSError:
        return False


def _sweep(scratch: Path) -> None:
    """Remove temp files a killed copy left in the store (those older than an hour)."""
    if not scratch.is_dir():
        return
    cutoff = time.time() - _STALE_TEMP
    for leftover in scratch.glob(".*.tmp"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
        except OSError:
            continue
