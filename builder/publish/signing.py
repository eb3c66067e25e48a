"""Signing statements as DSSE envelopes with a key the team holds, and checking them.

The envelope (Dead Simple Signing Envelope, what in-toto and cosign attestations use) and
the signature schemes are securesystemslib's; the key files are read by `cryptography`.
Nothing here implements crypto. The private key comes from the environment only, never
from sandbox.toml (which is committed) or a layer: `SANDBOX_SIGNING_KEY` names a PEM file,
or `SANDBOX_SIGNING_KEY_PEM` holds the PEM itself (a CI secret). Neither the key nor its
path's contents are ever printed. An Ed25519 key is the one to use: its signatures are
deterministic, so publishing the same image twice attaches the same envelope; ECDSA and RSA
keys work too, with a fresh signature each time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from builder.core.errors import SpecError, VerifyError
from builder.core.keys import canonical_bytes

if TYPE_CHECKING:
    from securesystemslib.signer import Key, Signer

KEY_FILE_ENV = "SANDBOX_SIGNING_KEY"
KEY_PEM_ENV = "SANDBOX_SIGNING_KEY_PEM"
PAYLOAD_TYPE = "application/vnd.in-toto+json"


class SigningKeyError(SpecError):
    """The signing or verifying key the environment or command names cannot be used (2)."""


def signer_from(environ: Mapping[str, str]) -> Signer | None:
    """A securesystemslib signer for the key the environment names; None when it names none."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner

    pem, where = _private_pem(environ)
    if pem is None:
        return None
    try:
        key = load_pem_private_key(pem, password=None)
        return CryptoSigner(key)
    except (ValueError, TypeError) as exc:
        msg = (
            f"{where} is not an unencrypted PEM private key (Ed25519, ECDSA or RSA): "
            f"{exc.__class__.__name__}. Make one with `openssl genpkey -algorithm ed25519 "
            "-out signing.pem` and keep it out of the repository"
        )
        raise SigningKeyError(msg) from None


def public_key(path: Path) -> Key:
    """The securesystemslib key of the PEM public key at `path`."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.signer import SSlibKey

    try:
        return SSlibKey.from_crypto(load_pem_public_key(path.read_bytes()))
    except OSError as exc:
        msg = f"cannot read the public key {path} ({exc.strerror}). Check the path"
        raise SigningKeyError(msg) from None
    except (ValueError, TypeError) as exc:
        msg = (
            f"{path} is not a PEM public key ({exc.__class__.__name__}). Derive it from the "
            "signing key: `openssl pkey -in signing.pem -pubout -out signing.pub`"
        )
        raise SigningKeyError(msg) from None


def sign(statement: bytes, signer: Signer) -> bytes:
    """The DSSE envelope (canonical JSON) of `statement`, signed by `signer`."""
    from securesystemslib.dsse import Envelope

    envelope = Envelope(payload=statement, payload_type=PAYLOAD_TYPE, signatures={})
    envelope.sign(signer)
    return canonical_bytes(envelope.to_dict())


def open_envelope(data: bytes, *, key: Key | None, where: str) -> bytes:
    """The statement inside the DSSE envelope `data`, its signature checked with `key`
    (None: not checked). A signature that does not verify is a VerifyError naming `where`."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError

    try:
        envelope = Envelope.from_dict(json.loads(data))
    except (ValueError, KeyError, TypeError) as exc:
        msg = f"{where} is not a DSSE envelope ({exc}). Publish the image again"
        raise VerifyError(msg) from None
    if envelope.payload_type != PAYLOAD_TYPE:
        msg = f"{where}: the envelope holds {envelope.payload_type!r}, not an in-toto statement"
        raise VerifyError(msg)
    if key is not None:
        try:
            envelope.verify([key], 1)
        except VerificationError as exc:
            msg = (
                f"{where}: the signature does not verify with the public key given ({exc}). "
                "The statement was changed after signing, or signed with another key"
            )
            raise VerifyError(msg) from None
    payload: bytes = envelope.payload
    return payload


def _private_pem(environ: Mapping[str, str]) -> tuple[bytes | None, str]:
    text = environ.get(KEY_PEM_ENV, "")
    if text.strip():
        return text.encode(), f"${KEY_PEM_ENV}"
    path = environ.get(KEY_FILE_ENV, "")
    if not path:
        return None, ""
    try:
        return Path(path).read_bytes(), f"{KEY_FILE_ENV}={path}"
    except OSError as exc:
        msg = f"cannot read the signing key {KEY_FILE_ENV}={path} ({exc.strerror}). Check it"
        raise SigningKeyError(msg) from None
