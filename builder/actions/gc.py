"""`sandbox gc`: remove what no build needs any more, and say how much it freed.

Kept: the nodes of this project's current lock, the nodes of every other project's last
build recorded in the same cache dir (`history`), the layers those nodes use, and the images
of those builds. Removed: every other node entry and layer file, this project's older images,
build-environment ("stage") images, and step containers a killed build left behind. An image
a running container holds (another build's step, say) is kept and counted, not an error.
Downloads are kept: they are shared by content and cheap to keep. The user-wide store of
built nodes (`cache.default_store_dir`) is never touched: it belongs to all the user's
projects, and a node dropped here comes back from it on the next build.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Protocol

from builder.core.errors import EngineRefusedError
from builder.core.layout import CACHE_LAYERS, CACHE_NODES
from builder.engine.interface import ImageInfo
from builder.image.export import stale_exports
from builder.image.loading import STAGE_LABEL
from builder.model.lockfile import Lock
from builder.realize import history
from builder.store.blobs import BlobStore
from builder.store.cache import Cache


class Images(Protocol):
    """The part of the engine gc uses."""

    def images(self, label: str) -> list[ImageInfo]: ...
    def containers(self, label: str) -> list[str]: ...
    def remove_image(self, image: str) -> None: ...
    def remove_container(self, container: str) -> None: ...


@dataclass(kw_only=True)
class GcResult:
    entries: int = 0
    layers: int = 0
    freed: int = 0  # bytes of cache files removed
    images: list[str] = field(default_factory=list)
    in_use: list[str] = field(default_factory=list)  # images a running container holds: kept
    containers: int = 0


def collect(
    *,
    cache: Cache,
    spec_path: Path,
    image_name: str,
    lock: Lock,
    engine: Images | None,
    dry_run: bool = False,
) -> GcResult:
    """Remove everything no current build refers to (or, with `dry_run`, only count it)."""
    result = GcResult()
    mine = str(spec_path.resolve())
    others = [r for r in history.all_records(cache) if r.spec != mine]
    keep_keys = {node.key for nodes in lock.platforms.values() for node in nodes.values()}
    keep_keys |= {n["key"] for r in others for n in r.nodes.values()}
    keep_layers: set[str] = set()
    for path in sorted((cache.root / CACHE_NODES).glob("*.json")):
        key = "sha256:" + path.stem
        entry = cache.entry(key) if key in keep_keys else None
        if entry is not None:
            keep_layers.update(layer.diff_id.removeprefix("sha256:") for layer in entry.layers)
            continue
        result.entries += 1
        result.freed += _remove(path, dry_run)
    for path in sorted((cache.root / CACHE_LAYERS).glob("*.tar")):
        if path.stem not in keep_layers:
            result.layers += 1
            result.freed += _remove(path, dry_run)
    for path in BlobStore(cache.root).unneeded(keep_layers):  # gzip blobs of dropped layers
        result.freed += _remove(path, dry_run)
    for tree in stale_exports(cache, keep_keys):  # deps trees exported for `mount` mode
        result.freed += _remove_tree(tree, dry_run)
    if engine is not None:
        _collect_images(engine, cache, mine, image_name, lock, others, result, dry_run)
    return result


def _collect_images(
    engine: Images,
    cache: Cache,
    mine: str,
    image_name: str,
    lock: Lock,
    others: list[history.BuildRecord],
    result: GcResult,
    dry_run: bool,
) -> None:
    keep_images = {i for r in others for i in (r.image_id, r.engine_id)}
    last = history.load(cache, Path(mine))
    current = {n.key for nodes in lock.platforms.values() for n in nodes.values()}
    if last is not None and {n["key"] for n in last.nodes.values()} <= current:
        keep_images |= {last.image_id, last.engine_id}
    # Another platform's last build (`build --platform`) is the one tagged latest-<arch>.
    latest = {f"{image_name}:latest-{p.split('/')[1]}" for p in lock.platforms}
    for image in engine.images("dev.sandbox-builder.lock"):
        ours = image.tags and all(t.rsplit(":", 1)[0] == image_name for t in image.tags)
        if ours and image.id not in keep_images and not latest & set(image.tags):
            _remove_image(engine, image.id, result, dry_run)
    for image in engine.images(STAGE_LABEL):
        _remove_image(engine, image.id, result, dry_run)
    for container in engine.containers("sandbox-builder=step"):
        result.containers += 1
        if not dry_run:
            engine.remove_container(container)


def _remove_image(engine: Images, image: str, result: GcResult, dry_run: bool) -> None:
    """Remove `image`, unless a running container holds it (another build's step on this
    engine, a container someone runs): the engine refuses with a conflict, and it is kept."""
    if dry_run:
        result.images.append(image)
        return
    try:
        engine.remove_image(image)
    except EngineRefusedError as exc:
        if exc.status != HTTPStatus.CONFLICT:
            raise
        result.in_use.append(image)
        return
    result.images.append(image)


def _remove_tree(folder: Path, dry_run: bool) -> int:
    size = sum(p.lstat().st_size for p in folder.rglob("*"))
    if not dry_run:
        shutil.rmtree(folder, ignore_errors=True)
    return size


def _remove(path: Path, dry_run: bool) -> int:
    try:
        size = path.stat().st_size
        if not dry_run:
            path.unlink()
    except FileNotFoundError:
        return 0
    return size
