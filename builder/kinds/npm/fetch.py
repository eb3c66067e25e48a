"""npm tarballs by integrity, from npm's own content store (cacache), fetched when missing.

npm keeps every tarball it downloads in `_cacache/content-v2/<algorithm>/<hex>`, named by
the digest that package-lock's `integrity` (an SRI string) gives. The download cache's npm
folder is that store for container steps (mounted as /root/.npm), so the host reads the same
files: a tarball `npm ci` fetched once is not fetched again, and one fetched here serves the
next `npm ci`. A missing one is downloaded by `resolved` (net/downloads.py: retries, auth,
deadline), checked against the strongest digest of its `integrity`, and renamed into place,
so a half or wrong file never has a valid name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from builder.core.errors import BuildError, CacheError
from builder.net import downloads

# SRI algorithms npm (ssri) writes, strongest first; it checks a tarball against the strongest.
_ALGORITHMS = ("sha512", "sha384", "sha256", "sha1")
_PARALLEL = 8  # downloads at once: small files, latency-bound


def fetch_all(
    packages: Sequence[Mapping[str, Any]], cacache: Path, what: str = "tools.npm"
) -> dict[str, Path]:
    """Each package's tarball (path in the tree -> file in `cacache`), fetched in parallel
    when missing; errors name node `what`."""
    with ThreadPoolExecutor(max_workers=_PARALLEL) as pool:
        found = pool.map(lambda pkg: tarball(pkg, cacache, what), packages)
        return {str(pkg["path"]): path for pkg, path in zip(packages, found, strict=True)}


def tarball(pkg: Mapping[str, Any], cacache: Path, what: str = "tools.npm") -> Path:
    """The tarball of package-lock entry `pkg` in `cacache`, downloaded when missing."""
    where, url = str(pkg["path"]), str(pkg["resolved"])
    algorithm, expected = strongest(str(pkg["integrity"]), where)
    content = cacache / "content-v2" / algorithm / expected[:2] / expected[2:4] / expected[4:]
    if content.is_file():
        return content
    got = downloads.fetch(url, sha256=None, dest_dir=cacache / "tmp", what=what)
    try:
        actual = _digest(got, algorithm)
        if actual != expected:
            msg = (
                f"{what}: {where}: {url} does not match its integrity in the lock "
                f"({algorithm} {expected}, got {actual}). It changed since the lock was made; "
                f"if that is expected lock {what} again, else a mirror or proxy altered it"
            )
            raise BuildError(msg)
        try:
            content.parent.mkdir(parents=True, exist_ok=True)
            got.replace(content)
        except OSError as exc:
            msg = (
                f"{what}: cannot write to npm's content store {cacache}: {exc.strerror}. "
                "Fix its permissions (a container step may have made it as root) or point "
                "SANDBOX_DOWNLOAD_DIR elsewhere"
            )
            raise CacheError(msg) from exc
    finally:
        got.unlink(missing_ok=True)
    return content


def strongest(integrity: str, where: str) -> tuple[str, str]:
    """(algorithm, hex digest) of the strongest hash an SRI string holds."""
    hashes = {}
    for item in integrity.split():
        algorithm, _, b64 = item.partition("-")
        try:
            hashes[algorithm] = base64.b64decode(b64.split("?")[0], validate=True).hex()
        except binascii.Error:
            continue
    for algorithm in _ALGORITHMS:
        if algorithm in hashes:
            return algorithm, hashes[algorithm]
    msg = f"tools.npm: {where}: integrity {integrity!r} names no sha512/384/256/1 digest"
    raise BuildError(msg)


def _digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as data:
        while chunk := data.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
