"""Gzip layer blobs (store/blobs.py): deterministic bytes, the cache index, checked pulls."""

from __future__ import annotations

import gzip
import hashlib
import io
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest

from builder.core.errors import CacheError, RegistryError
from builder.store.blobs import BlobStore, gunzip_layer

GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, mtime 0, OS unknown


def layer_tar(folder: Path, seed: str = "a", size: int = 3 << 20) -> tuple[Path, str]:
    """A layer tar of a few MiB (several read chunks), half compressible; and its diff ID."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (
            ("opt/text", (seed * 1000 + "\n").encode() * (size // 2002)),
            ("opt/random", hashlib.shake_256(seed.encode()).digest(size // 2)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = folder / f"{seed}.tar"
    path.write_bytes(buffer.getvalue())
    return path, "sha256:" + hashlib.sha256(buffer.getvalue()).hexdigest()


def test_a_layer_compresses_to_the_same_gzip_bytes_in_another_process(tmp_path: Path) -> None:
    layer, diff_id = layer_tar(tmp_path / "layers")
    blob = BlobStore(tmp_path / "cache").compress(layer, diff_id)
    again = BlobStore(tmp_path / "other").compress(layer, diff_id)
    script = (
        "import sys; from pathlib import Path; from builder.store.blobs import BlobStore; "
        "print(BlobStore(Path(sys.argv[1])).compress(Path(sys.argv[2]), sys.argv[3]).digest)"
    )
    elsewhere = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "third"), str(layer), diff_id],
        capture_output=True,
        text=True,
        check=True,
    )
    assert again == blob
    assert elsewhere.stdout.strip() == blob.digest
    data = BlobStore(tmp_path / "cache").path(blob.digest).read_bytes()
    assert (BlobStore(tmp_path / "third").path(blob.digest)).read_bytes() == data
    assert blob.size == len(data) < layer.stat().st_size
    assert blob.digest == "sha256:" + hashlib.sha256(data).hexdigest()


def test_the_blob_is_plain_gzip_without_name_or_time(tmp_path: Path) -> None:
    layer, diff_id = layer_tar(tmp_path)
    store = BlobStore(tmp_path / "cache")
    data = store.path(store.compress(layer, diff_id).digest).read_bytes()
    assert data[:10] == GZIP_HEADER
    assert gzip.decompress(data) == layer.read_bytes()
    # level 6, like docker: the same deflate stream zlib's own gzip wrapper writes
    deflate = zlib.compressobj(6, zlib.DEFLATED, 31)
    assert data[10:] == (deflate.compress(layer.read_bytes()) + deflate.flush())[10:]


def test_the_index_finds_a_layers_blob_and_survives_a_new_store(tmp_path: Path) -> None:
    layer, diff_id = layer_tar(tmp_path)
    blob = BlobStore(tmp_path / "cache").compress(layer, diff_id)
    assert BlobStore(tmp_path / "cache").known(diff_id) == blob
    assert BlobStore(tmp_path / "cache").known("sha256:" + "0" * 64) is None
    assert not list((tmp_path / "cache" / "tmp").iterdir()), "a temp file was left behind"


def test_a_corrupt_index_entry_counts_as_unknown(tmp_path: Path) -> None:
    layer, diff_id = layer_tar(tmp_path)
    store = BlobStore(tmp_path / "cache")
    store.compress(layer, diff_id)
    (store.folder / "index" / (diff_id.removeprefix("sha256:") + ".json")).write_text("{")
    assert store.known(diff_id) is None
    assert store.compress(layer, diff_id) == store.known(diff_id)


def test_a_corrupt_cache_layer_is_not_compressed(tmp_path: Path) -> None:
    layer, diff_id = layer_tar(tmp_path)
    layer.write_bytes(layer.read_bytes()[:-1] + b"x")
    store = BlobStore(tmp_path / "cache")
    with pytest.raises(CacheError, match=f"{layer} hashes to .*corrupt"):
        store.compress(layer, diff_id)
    assert store.known(diff_id) is None
    assert not list(store.folder.glob("*.tar.gz"))
    assert not list((tmp_path / "cache" / "tmp").iterdir())


def test_a_pulled_blob_decompresses_to_its_layer(tmp_path: Path) -> None:
    layer, diff_id = layer_tar(tmp_path)
    store = BlobStore(tmp_path / "cache")
    blob = store.compress(layer, diff_id)
    out = tmp_path / "out.tar"
    size = layer.stat().st_size
    gunzip_layer(store.path(blob.digest), out, diff_id=diff_id, size=size, what="blob")
    assert out.read_bytes() == layer.read_bytes()


def test_a_gzip_of_several_members_is_read_whole(tmp_path: Path) -> None:
    layer, diff_id = layer_tar(tmp_path)
    data = layer.read_bytes()
    members = tmp_path / "members.gz"
    members.write_bytes(gzip.compress(data[:1000]) + gzip.compress(data[1000:]))
    out = tmp_path / "out.tar"
    gunzip_layer(members, out, diff_id=diff_id, size=len(data), what="blob")
    assert out.read_bytes() == data


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("other layer", "does not decompress to layer"),
        ("bigger than said", "does not decompress to layer"),
        ("truncated", "does not decompress to layer"),
        ("not gzip", "not valid gzip"),
    ],
)
def test_a_pulled_blob_that_is_not_the_layer_is_refused(
    tmp_path: Path, case: str, message: str
) -> None:
    layer, diff_id = layer_tar(tmp_path)
    other, _ = layer_tar(tmp_path, seed="b")
    size = layer.stat().st_size
    packed = gzip.compress(layer.read_bytes())
    data = {
        "other layer": gzip.compress(other.read_bytes()),
        "bigger than said": gzip.compress(layer.read_bytes() + b"\0" * 10),
        "truncated": packed[: len(packed) // 2],
        "not gzip": b"PK\x03\x04 not a gzip file at all",
    }[case]
    if case == "bigger than said":
        size -= 1
    blob = tmp_path / "blob.gz"
    blob.write_bytes(data)
    with pytest.raises(RegistryError, match=message):
        gunzip_layer(blob, tmp_path / "out.tar", diff_id=diff_id, size=size, what="blob x")


def test_unneeded_lists_the_blobs_of_dropped_layers_only(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "cache")
    kept = store.compress(*layer_tar(tmp_path, seed="a"))
    dropped = store.compress(*layer_tar(tmp_path, seed="b"))
    stray = store.path("sha256:" + "1" * 64)
    stray.write_bytes(b"left by another zlib")
    unneeded = store.unneeded({kept.diff_id.removeprefix("sha256:")})
    index = store.folder / "index"
    assert sorted(unneeded) == sorted(
        [
            index / (dropped.diff_id.removeprefix("sha256:") + ".json"),
            store.path(dropped.digest),
            stray,
        ]
    )
