"""The build cache: content-addressed layers and one entry per node key.

Layout under the cache dir (`--cache-dir`, `SANDBOX_CACHE_DIR`, else `cache/` beside
sandbox.toml):

    layers/<hex>.tar         normalized layer tars, named by their diff ID
    nodes/<hex>.json         one entry per node key: its layers and the env it adds
    logs/<node>.log          the last build log of each node
    tmp/                     scratch for work in progress (emptied by gc)
    overlay.json             the orchestrator overlay of the last build
    .lock                    held while a build writes here

Every write is atomic (a temp file then `os.replace`), so a killed build leaves either a
whole entry or none. An entry is written only after its layers, so an entry never names a
missing layer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from builder.errors import CacheError
from builder.lockfile import write_atomic

ENTRY_VERSION = 1


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


def _mounts_under(folder: Path) -> list[str]:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    points = [line.split()[1].replace("\\040", " ") for line in lines if len(line.split()) > 1]
    return [p for p in points if p.startswith(str(folder) + "/")]


def default_cache_dir(spec_path: Path) -> Path:
    env = os.environ.get("SANDBOX_CACHE_DIR")
    return Path(env) if env else spec_path.parent / "cache"


def default_download_dir() -> Path:
    """Downloads are content-addressed, so every project of this user shares them."""
    env = os.environ.get("SANDBOX_DOWNLOAD_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir("sandbox-builder")) / "downloads"


class Cache:
    def __init__(self, root: Path, downloads: Path | None = None) -> None:
        self.root = root
        self._downloads = downloads or default_download_dir()

    def ensure(self) -> None:
        try:
            for sub in ("layers", "nodes", "logs", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            self.downloads.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"cache dir {self.root} is not writable ({exc.strerror}). Fix its permissions "
            msg += "or choose another with --cache-dir"
            raise CacheError(msg) from None

    @property
    def downloads(self) -> Path:
        """Content-addressed downloads and the package managers' caches, shared by all the
        user's projects (writes are atomic: temp file, then rename)."""
        return self._downloads

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    def layer_path(self, diff_id: str) -> Path:
        return self.root / "layers" / (diff_id.removeprefix("sha256:") + ".tar")

    def log_path(self, node: str) -> Path:
        return self.root / "logs" / f"{node}.log"

    def clear_scratch(self) -> None:
        """Remove what interrupted builds left in tmp/ (call only while holding the lock).

        A killed debootstrap can leave /proc and /sys mounted inside its rootfs: those are
        unmounted first, so removing the folder never reaches into the host's /proc.
        """
        tmp = (self.root / "tmp").resolve()
        for mount in sorted(_mounts_under(tmp), reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        if _mounts_under(tmp):
            return  # still mounted: leave it rather than delete through a mount
        for leftover in tmp.iterdir():
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)

    def scratch(self, prefix: str) -> Path:
        """A fresh folder under tmp/ for one piece of work; the caller removes it."""
        return Path(tempfile.mkdtemp(dir=self.root / "tmp", prefix=prefix))

    def store_layer(self, tar: Path, diff_id: str) -> Path:
        """Move a finished layer tar into place (atomic: same filesystem)."""
        dest = self.layer_path(diff_id)
        tar.replace(dest)
        return dest

    def entry(self, key: str) -> NodeEntry | None:
        """The entry for `key`, or None when it is missing or any of its layers is gone."""
        path = self._entry_path(key)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            msg = f"corrupt cache entry {path} ({exc}). Delete it; the node will rebuild"
            raise CacheError(msg) from None
        if data.get("version") != ENTRY_VERSION:
            return None
        entry = NodeEntry(
            name=data["name"],
            key=data["key"],
            layers=tuple(Layer(diff_id=la["diff_id"], size=la["size"]) for la in data["layers"]),
            env=data.get("env", {}),
            seconds=data.get("seconds", 0.0),
        )
        if not all(self.layer_path(la.diff_id).exists() for la in entry.layers):
            return None
        return entry

    def put(self, entry: NodeEntry) -> None:
        write_atomic(self._entry_path(entry.key), json.dumps(entry.to_json(), indent=1).encode())

    def _entry_path(self, key: str) -> Path:
        return self.root / "nodes" / (key.removeprefix("sha256:") + ".json")
