"""Package URLs and checksums as the SBOM writes them, for every kind's `pins`."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from builder.kinds.kind import Distro
from builder.model.inputs import Pin

_SRI = {"sha1": ("SHA1", 20), "sha256": ("SHA256", 32), "sha384": ("SHA384", 48)}
_SRI["sha512"] = ("SHA512", 64)


def purl(kind: str, name: str, version: str = "", *, namespace: str = "", **qualifiers: str) -> str:
    """A package URL as the purl spec (and packageurl-python) writes it."""
    text = f"pkg:{kind}/" + (f"{_quote(namespace)}/" if namespace else "") + _quote(name)
    if version:
        text += "@" + _quote(version)
    pairs = [f"{k}={_quote(v)}" for k, v in sorted(qualifiers.items()) if v]
    return text + ("?" + "&".join(pairs) if pairs else "")


def _quote(text: str) -> str:
    return quote(text, safe="/:")


def pep503(name: str) -> str:
    """A Python distribution name as PyPI's URLs spell it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def sri(integrity: str) -> Iterator[tuple[str, str]]:
    """npm's subresource-integrity strings (`sha512-<base64>`) as (algorithm, hex)."""
    for item in integrity.split():
        alg, _, b64 = item.partition("-")
        if alg not in _SRI:
            continue
        try:
            digest = base64.b64decode(b64, validate=True)
        except binascii.Error:
            continue
        name, size = _SRI[alg]
        if len(digest) == size:  # a damaged entry gives no checksum rather than a wrong one
            yield name, digest.hex()


def package(
    *,
    name: str,
    version: str,
    purl: str,
    kind: str,
    checksums: tuple[tuple[str, str], ...] = (),
    url: str = "",
    note: str = "",
) -> dict[str, Any]:
    """An SBOM package's fields (sbom/inventory.py's `Package` but where it sits): `kind` is
    library, application, container or file; `checksums` (algorithm, hex) pairs."""
    return {
        "name": name,
        "version": version,
        "purl": purl,
        "kind": kind,
        "checksums": checksums,
        "url": url,
        "note": note,
    }


def debs(pins: tuple[Pin, ...], distro: Distro) -> Iterator[tuple[str, dict[str, Any]]]:
    """Debian packages; one an image base came with has no .deb sha256 (dpkg keeps none)."""
    for pin in pins:
        yield (
            f"{pin.name}-{pin.version}",
            package(
                name=pin.name,
                version=pin.version,
                purl=purl(
                    "deb",
                    pin.name,
                    pin.version,
                    namespace=distro.vendor,
                    arch=distro.arch,
                    distro=distro.suite,
                ),
                kind="library",
                checksums=(("SHA256", pin.sha256),) if pin.sha256 is not None else (),
            ),
        )
