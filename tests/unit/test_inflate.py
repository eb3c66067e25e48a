"""Package tarballs read through ISA-L's inflate give the members zlib's would."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from builder.core.inflate import read_tarball


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _members(path: Path) -> dict[str, bytes]:
    with read_tarball(path) as tar:
        out = {}
        for member in tar:
            data = tar.extractfile(member)
            out[member.name] = data.read() if data is not None else b""
        return out


FILES = {"package/package.json": b'{"name": "a"}', "package/big.bin": bytes(range(256)) * 4096}


def test_a_gzip_tarball_reads_as_zlib_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "a.tgz"
    path.write_bytes(gzip.compress(_tar(FILES), mtime=0))
    assert _members(path) == FILES


def test_a_plain_tarball_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "a.tar"
    path.write_bytes(_tar(FILES))
    assert _members(path) == FILES


def test_a_truncated_tarball_raises(tmp_path: Path) -> None:
    data = gzip.compress(_tar(FILES), mtime=0)
    path = tmp_path / "a.tgz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EOFError, match="ended before the end-of-stream marker"):
        _members(path)
