"""A blob upload's body: a file streamed in chunks and hashed on the way, checked at the end.

The registry client (registry.py) PUTs our layers from disk as one monolithic upload; this
makes sure what went out is the blob it was named, so a file that changed or shrank since it
was built is refused by name rather than published under a digest it does not have.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from builder.core.errors import RegistryError
from builder.net.transport import CHUNK


@dataclass(frozen=True, kw_only=True)
class Upload:
    """A file streamed as a request body; it must hash to `digest` (`sha256:<hex>`)."""

    path: Path
    digest: str


class Stream:
    """An upload body read in 1 MiB chunks and hashed on the way (http.client iterates it)."""

    def __init__(self, file: BinaryIO, upload: Upload, size: int) -> None:
        self._file, self._upload, self.size = file, upload, size
        self._hasher, self._sent = hashlib.sha256(), 0

    @classmethod
    @contextlib.contextmanager
    def open(cls, upload: Upload) -> Iterator[Stream]:
        try:
            file = upload.path.open("rb")
        except OSError as exc:
            msg = f"cannot read {upload.path} to upload it as {upload.digest}: {exc.strerror}"
            raise RegistryError(msg) from exc
        with file:
            yield cls(file, upload, os.fstat(file.fileno()).st_size)

    def __iter__(self) -> Iterator[bytes]:
        while self._sent < self.size:
            chunk = self._file.read(min(CHUNK, self.size - self._sent))
            if not chunk:  # it shrank: stop now, or the registry waits for the missing bytes
                raise self._mismatch(None)
            self._hasher.update(chunk)
            self._sent += len(chunk)
            yield chunk

    def verify(self) -> None:
        """Raise unless all of the file was sent and it hashes to its digest."""
        actual = f"sha256:{self._hasher.hexdigest()}"
        if self._sent != self.size or actual != self._upload.digest:
            raise self._mismatch(actual)

    def _mismatch(self, actual: str | None) -> RegistryError:
        how = "shrank while uploading" if actual is None else f"hash to {actual}"
        return RegistryError(
            f"{self._upload.path} is not blob {self._upload.digest}: its bytes {how}. "
            "Nothing was published; build it again so the file matches its digest."
        )
