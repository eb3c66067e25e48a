"""Node's OpenSSL headers for other platforms, left out of the runtime's layer.

Every node archive, nodejs.org's tarballs and the PyPI wheel alike, carries OpenSSL's generated
configuration headers for 21 targets in `include/node/openssl/archs/<target>/` (node 22.20:
58 MB and 2,986 of the archive's 6,195 entries; the rest of `include/` is 3 MB). The headers
beside them pick one folder by compiler macros (`__linux` and `__x86_64__` ->
`linux-x86_64`), so a native addon compiled in the image only ever reads its own platform's.
The layer keeps that folder and leaves the other 20 out, as an npm tree leaves out the
packages of other `os`/`cpu`: the layer has about half the entries to register (6,195 ->
~3,370) and is 54 MB smaller, and node-gyp given the prefix as `--nodedir` still finds every
header it includes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

ARCHS = "include/node/openssl/archs"

# platform -> the target folder the headers choose there (openssl/*_asm.h, *_no-asm.h)
_TARGET = {"linux/amd64": "linux-x86_64", "linux/arm64": "linux-aarch64"}


def foreign(targets: Iterable[str], platform: str) -> list[str]:
    """The folders of `ARCHS` (names in `targets`) a build for `platform` never reads, as
    paths relative to the prefix; none when the platform's own folder is not among them (an
    archive laid out otherwise is kept whole)."""
    own = _TARGET.get(platform)
    names = sorted(set(targets))
    if own not in names:
        return []
    return [f"{ARCHS}/{name}" for name in names if name != own]


def on_disk(prefix: Path, platform: str) -> list[str]:
    """`foreign` for a runtime unpacked under `prefix`."""
    archs = prefix / ARCHS
    if archs.is_symlink() or not archs.is_dir():
        return []
    return foreign((p.name for p in archs.iterdir() if p.is_dir()), platform)


def in_listing(names: Iterable[str], platform: str) -> list[str]:
    """`foreign` for a runtime's listing (`core/unpack.Tree` entry names)."""
    below = f"{ARCHS}/"
    return foreign(
        (n[len(below) :] for n in names if n.startswith(below) and "/" not in n[len(below) :]),
        platform,
    )
