"""Inflating with ISA-L (python-isal) rather than zlib: package tarballs read as a stream.

ISA-L's inflate is used wherever this tool inflates much: npm's and pnpm's `.tgz` here,
pulled layer blobs (store/blobs.py), zip members of a runtime's wheel (core/unpack.py).
Laying out npm trees on the host is mostly inflating: @openai/codex's 172 MB tarball holds
444 MB, which zlib inflates in 2.7 s here and ISA-L's inflate (python-isal's `igzip`, a
well-kept binding with wheels for every platform we run on) in 0.9 s. The bytes are the
same: inflating is deterministic, whoever does it. A tarball that is not gzip-compressed is
read as tarfile would (`r|*`).
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from isal import igzip, isal_zlib

GZIP_MAGIC = b"\x1f\x8b"

# What isal_zlib raises on damaged data (its stubs declare `error` as an instance).
ISAL_ERROR = cast("type[Exception]", isal_zlib.error)


@contextmanager
def read_tarball(path: Path) -> Iterator[tarfile.TarFile]:
    """The tar in `path`, gzip-compressed or not, open for one pass over its members."""
    with path.open("rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        if not compressed:
            with tarfile.open(fileobj=raw, mode="r|*") as tar:
                yield tar
            return
        inflated = igzip.IGzipFile(fileobj=raw, mode="rb")  # type: ignore[no-untyped-call]
        with inflated, tarfile.open(fileobj=inflated, mode="r|") as tar:
            yield tar
