"""Gzip registry blobs of cached layers: compressed once, deterministically, kept in the cache.

Layers travel to the registry gzip-compressed, as `docker push` sends them (2-3x fewer bytes),
while the image config keeps naming the uncompressed diff IDs, so the image ID is unchanged.
Layout under the cache dir:

    blobs/<hex>.tar.gz           a layer's gzip blob, named by its own (compressed) digest
    blobs/index/<hex>.json       per diff ID: {"version", "diff_id", "digest", "size"}

Determinism: the gzip header is written here, not by the `gzip` module: no name, no comment,
mtime 0, XFL 0, OS 255 ("unknown", as Go's compress/gzip writes it); the body is raw deflate at
level 6 (Docker's default), zlib's default window and memLevel, one member. So the same layer
gives the same blob bytes, hence the same registry digest, on every machine whose Python runs
the same zlib (`zlib.ZLIB_RUNTIME_VERSION`). A different deflate implementation (zlib-ng, which
some distributions ship as zlib) may pick other matches: its blob is as valid but another
digest, so that machine uploads its own copy once; the image ID stays the same.

A blob is written to `tmp/` and renamed into place, and its index entry only after it, so a
killed compression leaves no half blob. Pulled blobs are kept too (`adopt`), so a teammate
who re-publishes a pulled layer neither compresses nor uploads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from isal import isal_zlib

from builder.core.atomic import write_atomic
from builder.core.errors import CacheError, RegistryError
from builder.core.inflate import ISAL_ERROR
from builder.core.layout import CACHE_BLOBS, CACHE_TMP

GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
GZIP_LAYER_TYPES = frozenset({GZIP_LAYER, "application/vnd.docker.image.rootfs.diff.tar.gzip"})
TAR_LAYER_TYPES = frozenset(
    {"application/vnd.oci.image.layer.v1.tar", "application/vnd.docker.image.rootfs.diff.tar"}
)
LEVEL = 6
INDEX_VERSION = 1
_CHUNK = 1 << 20
# magic, deflate, no flags, mtime 0, XFL 0, OS 255 (unknown)
_HEADER = b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x00\xff"


@dataclass(frozen=True, kw_only=True)
class Blob:
    """The gzip blob of one layer: the layer's diff ID, the blob's digest and size."""

    diff_id: str
    digest: str
    size: int


class BlobStore:
    """The gzip blobs under `<cache>/blobs`, found by the diff ID of the layer they hold."""

    def __init__(self, cache_root: Path) -> None:
        self.folder = cache_root / CACHE_BLOBS
        self._index = self.folder / "index"
        self._tmp = cache_root / CACHE_TMP

    def path(self, digest: str) -> Path:
        return self.folder / (digest.removeprefix("sha256:") + ".tar.gz")

    def known(self, diff_id: str) -> Blob | None:
        """What the index says about `diff_id`'s blob (the blob file itself may be gone).

        An unreadable index entry counts as missing: compressing again rewrites it.
        """
        try:
            data = json.loads(self._index_path(diff_id).read_text())
            if data.get("version") != INDEX_VERSION or data.get("diff_id") != diff_id:
                return None
            return Blob(diff_id=diff_id, digest=str(data["digest"]), size=int(data["size"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def compress(self, layer: Path, diff_id: str) -> Blob:
        """Gzip the layer tar `layer` (which must hash to `diff_id`) into the store."""
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, name = _temp(self._tmp, layer)
        partial = Path(name)
        try:
            try:
                with os.fdopen(handle, "wb") as out, _open(layer) as src:
                    actual, digest, size = gzip_stream(src, out)
            except OSError as exc:
                msg = f"cannot write {partial}: {exc.strerror}. Free some space or use another "
                msg += "--cache-dir."
                raise CacheError(msg) from exc
            if actual != diff_id:
                msg = (
                    f"cache layer {layer} hashes to {actual}, not {diff_id}: it is corrupt. "
                    "Delete it; its node will be built again by the next `sandbox build`."
                )
                raise CacheError(msg)
            blob = Blob(diff_id=diff_id, digest=digest, size=size)
            self.adopt(partial, blob)
        finally:
            partial.unlink(missing_ok=True)
        return blob

    def adopt(self, gz: Path, blob: Blob) -> None:
        """Move a checked blob file (same filesystem) into the store and index it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        gz.chmod(0o644)
        gz.replace(self.path(blob.digest))
        entry = {
            "version": INDEX_VERSION,
            "diff_id": blob.diff_id,
            "digest": blob.digest,
            "size": blob.size,
        }
        write_atomic(self._index_path(blob.diff_id), json.dumps(entry, sort_keys=True).encode())

    def unneeded(self, keep: set[str]) -> list[Path]:
        """Index entries and blobs of layers whose diff ID hex is not in `keep`."""
        drop: list[Path] = []
        kept_blobs: set[str] = set()
        for entry in sorted(self._index.glob("*.json")):
            blob = self.known("sha256:" + entry.stem)
            if entry.stem in keep and blob is not None:
                kept_blobs.add(blob.digest.removeprefix("sha256:"))
            else:
                drop.append(entry)
        for path in sorted(self.folder.glob("*.tar.gz")):
            if path.name.removesuffix(".tar.gz") not in kept_blobs:
                drop.append(path)
        return drop

    def _index_path(self, diff_id: str) -> Path:
        return self._index / (diff_id.removeprefix("sha256:") + ".json")


def gzip_stream(src: BinaryIO, out: BinaryIO) -> tuple[str, str, int]:
    """Deterministic gzip of `src` into `out`: (source digest, gzip digest, gzip size).

    zlib and hashlib release the GIL on big buffers, so threads compress in parallel.
    """
    source, written = hashlib.sha256(), hashlib.sha256()
    size = 0

    def emit(data: bytes) -> None:
        nonlocal size
        written.update(data)
        out.write(data)
        size += len(data)

    deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY)
    crc, length = 0, 0
    emit(_HEADER)
    while chunk := src.read(_CHUNK):
        source.update(chunk)
        crc = zlib.crc32(chunk, crc)
        length += len(chunk)
        emit(deflate.compress(chunk))
    emit(deflate.flush())
    emit(struct.pack("<II", crc & 0xFFFFFFFF, length & 0xFFFFFFFF))
    return f"sha256:{source.hexdigest()}", f"sha256:{written.hexdigest()}", size


def gunzip_layer(gz: Path, dest: Path, *, diff_id: str, size: int, what: str) -> None:
    """Decompress the pulled blob `gz` to `dest`, which must come out as layer `diff_id`.

    Any gzip (several members, as pigz may write, too) is read; output beyond the layer's
    `size` stops at once, so a hostile blob cannot fill the disk. `what` names the blob.
    Inflated with ISA-L (core/inflate.py): the same bytes, ~2x faster.
    """
    hasher = hashlib.sha256()
    written = 0
    try:
        with _open(gz) as src, dest.open("wb") as out:
            inflate = isal_zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
            final = False
            while not final and written <= size:
                data = inflate.unconsumed_tail or inflate.unused_data or src.read(_CHUNK)
                if not data:
                    final = True
                    piece = b"" if inflate.eof else inflate.flush()
                else:
                    if inflate.eof:  # the next gzip member
                        inflate = isal_zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
                    piece = inflate.decompress(data, _CHUNK)
                written += len(piece)
                if written <= size:
                    hasher.update(piece)
                    out.write(piece)
            complete = inflate.eof
    except ISAL_ERROR as exc:
        msg = f"{what}: it is not valid gzip ({exc}). Publish that node again; nothing was kept."
        raise RegistryError(msg) from exc
    except OSError as exc:
        msg = f"cannot write {dest}: {exc.strerror}. Free some space or use another --cache-dir."
        raise CacheError(msg) from exc
    actual = f"sha256:{hasher.hexdigest()}"
    if written > size or not complete or actual != diff_id:
        msg = (
            f"{what}: it does not decompress to layer {diff_id} ({size} bytes). The "
            "publisher pushed other data under that node; publish it again. Nothing was kept."
        )
        raise RegistryError(msg)


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror}. Delete it; the node will be built again."
        raise CacheError(msg) from exc


def _temp(folder: Path, layer: Path) -> tuple[int, str]:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=folder, prefix=f"gzip-{layer.stem[:12]}-")
    except OSError as exc:
        msg = f"cannot write in {folder}: {exc.strerror}. Free some space or use another "
        msg += "--cache-dir."
        raise CacheError(msg) from exc
