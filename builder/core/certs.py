"""X.509 certificates as plain bytes: PEM bundles read, a certificate named, the host's own CAs.

A build mounts the host's CA bundle into its steps so TLS works behind a proxy that re-signs it
(DESIGN.md §9); `sandbox check` then proves none of the host's *own* CAs reached a layer.
Which ones are the host's own: those of its bundle that no public set holds, the public set
being what Debian's ca-certificates ships under /usr/share/ca-certificates/mozilla, on the host
and in the image (public roots are in every image with TLS: node, certifi, ca-certificates).
Comparing with the image's /etc/ssl/certs bundle instead would hide exactly the leak it is
meant to find, a host CA that `update-ca-certificates` folded into that bundle.

Only the DER bytes are compared, so no crypto library is needed; naming a certificate reads
its subject with a minimal DER walk.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


def ca_bundle() -> Path | None:
    """The host CA bundle mounted into build steps (never into a layer), if any."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), *CA_BUNDLES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
_PEM = re.compile(
    rb"-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]{64,16384}?)-----END CERTIFICATE-----"
)
HOST_PUBLIC = Path("/usr/share/ca-certificates/mozilla")
# Inside an image, as a layer tar names it.
PUBLIC_IN_IMAGE = "usr/share/ca-certificates/mozilla/"
_ATTRIBUTES = {b"\x55\x04\x03": "CN", b"\x55\x04\x0a": "O", b"\x55\x04\x0b": "OU"}


def pem_certs(data: bytes) -> list[bytes]:
    """The DER bytes of every PEM certificate in `data` (broken blocks are skipped)."""
    found = []
    for match in _PEM.finditer(data):
        try:
            found.append(base64.b64decode(b"".join(match.group(1).split()), validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def public_on_host(folder: Path | None = None) -> set[bytes]:
    """The public roots this host's ca-certificates ships (empty when it has none)."""
    folder = folder or HOST_PUBLIC
    found: set[bytes] = set()
    if folder.is_dir():
        for path in sorted(folder.rglob("*.crt")):
            found.update(pem_certs(path.read_bytes()))
    return found


def host_only(bundle: bytes, public: Iterable[bytes]) -> list[bytes]:
    """The certificates of the host's `bundle` that are not in `public`, in bundle order."""
    known = set(public)
    seen: set[bytes] = set()
    own = []
    for der in pem_certs(bundle):
        if der not in known and der not in seen:
            seen.add(der)
            own.append(der)
    return own


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def describe(der: bytes) -> str:
    """`CN=Some CA` (else O=, OU=) of the subject, or the sha256 when it cannot be read."""
    try:
        names = _subject_names(der)
    except (IndexError, ValueError):
        names = {}
    for attribute in ("CN", "O", "OU"):
        if attribute in names:
            return f"{attribute}={names[attribute]}"
    return f"sha256:{fingerprint(der)[:16]}"


def _subject_names(der: bytes) -> dict[str, str]:
    _, start, end = _tlv(der, 0)  # Certificate ::= SEQUENCE { tbsCertificate, ... }
    _, start, end = _tlv(der, start)  # TBSCertificate ::= SEQUENCE { ... }
    fields = _children(der, start, end)
    first = 1 if fields[0][0] == 0xA0 else 0  # [0] version is optional
    _, start, end = fields[first + 4]  # serial, signature, issuer, validity, subject
    names: dict[str, str] = {}
    for _, set_start, set_end in _children(der, start, end):  # RDN: SET OF AttributeValue
        for _, seq_start, seq_end in _children(der, set_start, set_end):
            (_, oid_start, oid_end), (_, value_start, value_end) = _children(
                der, seq_start, seq_end
            )[:2]
            attribute = _ATTRIBUTES.get(der[oid_start:oid_end])
            if attribute:
                names.setdefault(attribute, der[value_start:value_end].decode(errors="replace"))
    return names


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at `pos`."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        msg = "truncated DER"
        raise ValueError(msg)
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    found = []
    while start < end:
        element = _tlv(data, start)
        found.append(element)
        start = element[2]
    return found
