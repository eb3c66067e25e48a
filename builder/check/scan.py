"""Static checks of an image's layer tars: setuid files, and what must never be in a layer.

Two views of the same tars. Setuid/setgid files are judged on the *final* filesystem, the
layers stacked with their whiteouts applied, because that is what runs: a base layer's
/usr/bin/passwd whose bits the system layer cleared is fine. Leaks are judged on *every*
layer: a secret deleted by a higher layer is still in the lower tar anyone can pull.

A leak is a host CA certificate (as DER, or in any PEM block), a `.netrc` file, or the value
of a secret the build had in its environment. File contents are read in overlapping windows,
so a needle crossing a window's edge is still found and large binaries never sit in memory.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from builder.core import certs

_WINDOW = 8 << 20
_OVERLAP = 64 << 10  # longer than any PEM certificate or secret looked for
_NETRC = (".netrc", "_netrc")
_OPAQUE = ".wh..wh..opq"


@dataclass(frozen=True, kw_only=True)
class LayerRef:
    """One layer tar of the image, and who made it (a node name, or its place in the image)."""

    name: str
    path: Path


@dataclass(frozen=True, kw_only=True, order=True)
class Hit:
    layer: str
    path: str
    what: str


@dataclass(frozen=True, kw_only=True)
class Survey:
    """What one walk over the layers' headers finds."""

    setuid: dict[str, str]  # setuid/setgid files of the stacked image: "/path" -> layer
    public: set[bytes]  # certificates of the image's own public set (see builder/core/certs.py)


def survey(layers: list[LayerRef]) -> Survey:
    final: dict[str, str] = {}
    public: set[bytes] = set()
    for layer in layers:
        with tarfile.open(layer.path) as tar:
            members = tar.getmembers()
            for member in members:
                if member.isreg() and _clean(member.name).startswith(certs.PUBLIC_IN_IMAGE):
                    data = tar.extractfile(member)
                    public.update(certs.pem_certs(data.read() if data else b""))
        for member in members:  # whiteouts hide lower layers' files, whatever their order
            folder, _, base = _clean(member.name).rpartition("/")
            if base == _OPAQUE:
                _drop_under(final, folder)
            elif base.startswith(".wh."):
                _drop(final, _join(folder, base.removeprefix(".wh.")))
        for member in members:
            name = _clean(member.name)
            if name.rpartition("/")[2].startswith(".wh."):
                continue
            if not member.isdir():
                _drop(final, name)  # a file replacing a folder hides what was under it
            if (member.isreg() or member.islnk()) and member.mode & 0o6000:
                final["/" + name] = layer.name
    return Survey(setuid=dict(sorted(final.items())), public=public)


def find_leaks(
    layers: list[LayerRef], *, ca: Mapping[bytes, str], secrets: Mapping[str, bytes]
) -> list[Hit]:
    """Every `.netrc` file, host CA certificate (`ca`: DER -> name) and secret value (`secrets`:
    what -> value) in any layer, with the layer and the path it is at."""
    needles = {der: f"host CA certificate {name}" for der, name in ca.items()}
    needles.update({value: what for what, value in secrets.items() if value})
    hits: set[Hit] = set()
    for layer in layers:
        with tarfile.open(layer.path) as tar:
            for member in tar:
                name = _clean(member.name)
                if not member.isreg():
                    continue
                if name.rpartition("/")[2] in _NETRC:
                    hits.add(Hit(layer=layer.name, path="/" + name, what=".netrc file"))
                data = tar.extractfile(member) if needles and member.size else None
                if data is None:
                    continue
                for what in _found_in(data, needles, ca):
                    hits.add(Hit(layer=layer.name, path="/" + name, what=what))
    return sorted(hits)


def _found_in(data: IO[bytes], needles: Mapping[bytes, str], ca: Mapping[bytes, str]) -> set[str]:
    found: set[str] = set()
    for window in _windows(data):
        found.update(what for needle, what in needles.items() if needle in window)
        if ca and certs.PEM_BEGIN in window:
            found.update(
                f"host CA certificate {ca[der]}" for der in certs.pem_certs(window) if der in ca
            )
    return found


def _windows(data: IO[bytes]) -> Iterator[bytes]:
    """The stream in windows of _WINDOW bytes, each starting with the last _OVERLAP of the one
    before, so anything shorter than _OVERLAP is whole in some window."""
    tail = b""
    while chunk := data.read(_WINDOW):
        window = tail + chunk
        yield window
        tail = window[-_OVERLAP:]


def _drop(final: dict[str, str], name: str) -> None:
    final.pop("/" + name, None)
    _drop_under(final, name)


def _drop_under(final: dict[str, str], folder: str) -> None:
    prefix = f"/{folder}/" if folder else "/"
    for path in [p for p in final if p.startswith(prefix)]:
        del final[path]


def _join(folder: str, base: str) -> str:
    return f"{folder}/{base}" if folder else base


def _clean(name: str) -> str:
    return name.removeprefix("./").rstrip("/")
