"""Host-side HTTP: indexes and checksummed archives, with retries and credentials.

Runtimes and binary tools are downloaded on the host, not inside a build container, so the
download cache survives between builds and a file is fetched once per machine. An archive is
stored content-addressed, as `<dest_dir>/<sha256 hex>`: it is written to a temporary file in
the same folder, checked, then renamed into place, so a killed or concurrent download never
leaves a half file under a valid name, and a file already there is used without the network.

Requests go through the one transport, net/transport.py, with its default policy (`RETRY`):
transient failures (no connection, a reset, HTTP 5xx or 429) are tried three times in all,
after 1 s and 2 s; anything else (404, 401, ...) fails at once, because waiting will not fix it.
Each read waits at most `SANDBOX_NET_TIMEOUT`; a download as a whole (every attempt, every
read) may take `SANDBOX_STEP_TIMEOUT`, so a server that trickles a byte every few seconds,
which no read timeout catches, is stopped too (within one read timeout of that limit).

Credentials: with `auth_env`, the value of that environment variable is sent as a bearer
token; otherwise `~/.netrc` gives basic auth for the host, as curl and pip do. The header is
added "unredirected", so a redirect to another host (a CDN, a presigned URL) never carries
it, and no message ever shows it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import netrc
import os
import tempfile
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from builder.core import limits
from builder.core.errors import BuilderError, BuildError, CacheError, ResolutionError
from builder.net import transport
from builder.net.transport import Deadline, Transient, redact

RETRY = transport.DEFAULT

T = TypeVar("T")


def fetch(
    url: str,
    *,
    sha256: str | None,
    dest_dir: Path,
    what: str,
    error: type[BuilderError] = BuildError,
    auth_env: str | None = None,
) -> Path:
    """Download `url` to `dest_dir/<sha256 hex>` and return that path.

    With `sha256` (a hex digest, optionally written `sha256:<hex>`) the file must have that
    digest, and a file already in the cache is returned without touching the network. Without
    it (lock time) the digest is computed while downloading; read it from the returned name.
    `what` is the name a user passes to `sandbox lock --update` (a runtime or tool name).
    """
    expected = sha256.removeprefix("sha256:").lower() if sha256 else None
    if expected is not None:
        cached = dest_dir / expected
        if cached.is_file():
            return cached
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cache_error(what, dest_dir, exc) from exc
    headers = _auth_headers(url, auth_env, what=what, error=error)
    deadline = Deadline(url=url, what=what, error=error)
    partial, actual = _with_retries(
        lambda: _download(url, headers, dest_dir, deadline), url=url, what=what, error=error
    )
    if expected is not None and actual != expected:
        partial.unlink(missing_ok=True)
        msg = (
            f"{what}: the file at {redact(url)} does not match its pinned checksum "
            f"(expected sha256 {expected}, got {actual}). It changed since sandbox.lock was "
            f"made (or since its publisher listed it). If that change is expected, run "
            f"`sandbox lock --update {what}`; otherwise a mirror or proxy altered it."
        )
        raise error(msg)
    final = dest_dir / actual
    partial.replace(final)
    return final


def get_text(url: str, *, what: str, error: type[BuilderError] = ResolutionError) -> str:
    """The body of `url` as text (an index, a checksum list), with the retry policy."""
    headers = _auth_headers(url, None, what=what, error=error)
    deadline = Deadline(url=url, what=what, error=error)

    def read() -> bytes:
        with _open(url, headers, what, error) as response:
            return b"".join(deadline.chunks(response))

    data = _with_retries(read, url=url, what=what, error=error)
    return data.decode("utf-8", errors="replace")


def get_json(url: str, *, what: str, error: type[BuilderError] = ResolutionError) -> Any:
    """The JSON document at `url`, with the retry policy."""
    text = get_text(url, what=what, error=error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        msg = (
            f"{what}: {redact(url)} did not return JSON ({exc.msg} at line {exc.lineno}). "
            "Check the URL or the mirror; a proxy may have answered with an HTML page."
        )
        raise error(msg) from exc


def _download(
    url: str, headers: dict[str, str], dest_dir: Path, deadline: Deadline
) -> tuple[Path, str]:
    """One attempt: stream `url` into a temporary file in `dest_dir`, return it and its digest."""
    what, error = deadline.what, deadline.error
    try:
        handle, name = tempfile.mkstemp(dir=dest_dir, prefix=".partial-")
    except OSError as exc:
        raise _cache_error(what, dest_dir, exc) from exc
    partial = Path(name)
    digest = hashlib.sha256()
    try:
        with (
            os.fdopen(handle, "wb", buffering=0) as out,
            _open(url, headers, what, error) as response,
        ):
            for chunk in deadline.chunks(response):
                digest.update(chunk)
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise _cache_error(what, dest_dir, exc) from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return partial, digest.hexdigest()


def _cache_error(what: str, dest_dir: Path, exc: OSError) -> CacheError:
    return CacheError(
        f"{what}: cannot write to the download cache {dest_dir}: {exc.strerror}. "
        "Free some space or point SANDBOX_DOWNLOAD_DIR elsewhere."
    )


@contextlib.contextmanager
def _open(
    url: str, headers: dict[str, str], what: str, error: type[BuilderError]
) -> Iterator[http.client.HTTPResponse]:
    request = transport.request(url, secret=headers)
    try:
        response = transport.opener(url).open(request, timeout=RETRY.timeout())
    except urllib.error.HTTPError as exc:
        exc.close()
        if RETRY.transient(exc.code):
            status = f"HTTP {exc.code} {exc.reason}"
            raise Transient(status, answered=True) from exc
        raise error(_refused(url, exc.code, str(exc.reason), what)) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise Transient(transport.reason(exc), answered=False) from exc
    with response:
        try:
            yield response
        except (OSError, http.client.HTTPException) as exc:
            raise Transient(transport.reason(exc), answered=False) from exc


def _with_retries(attempt: Callable[[], T], *, url: str, what: str, error: type[BuilderError]) -> T:
    def gave_up(last: Transient) -> BuilderError:
        return error(
            f"{what}: cannot download {redact(url)} after {RETRY.attempts} attempts "
            f"(last: {last}; each waited up to {RETRY.timeout():g}s for an answer, "
            f"{limits.NET_TIMEOUT_ENV}). Check the network, a proxy (HTTPS_PROXY) or "
            "the mirror, then run the command again."
        )

    return transport.retrying(attempt, RETRY, gave_up)


def _refused(url: str, code: int, reason: str, what: str) -> str:
    shown = redact(url)
    if code == 404:
        return (
            f"{what}: {shown} was not found (HTTP 404). Check the version and the URL "
            "(or the mirror) in sandbox.toml; if it comes from sandbox.lock, the publisher "
            f"removed it: run `sandbox lock --update {what}`."
        )
    if code in (401, 403):
        return (
            f"{what}: {shown} refused access (HTTP {code} {reason}). Give credentials: "
            "`auth_env` naming a variable that holds a token, or a `machine` entry for "
            "the host in ~/.netrc."
        )
    return f"{what}: {shown} answered HTTP {code} {reason}. Check the URL and the server."


def _auth_headers(
    url: str, auth_env: str | None, *, what: str, error: type[BuilderError]
) -> dict[str, str]:
    if auth_env is not None:
        token = os.environ.get(auth_env)
        if not token:
            msg = (
                f"{what}: the environment variable {auth_env} (its `auth_env`) is not set. "
                f"Export {auth_env} with the token for {urlsplit(url).hostname}."
            )
            raise error(msg)
        return {"Authorization": f"Bearer {token}"}
    host = urlsplit(url).hostname
    path = Path.home() / ".netrc"
    if not host or not path.is_file():
        return {}
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (netrc.NetrcParseError, OSError) as exc:
        msg = f"{what}: {path} cannot be read ({exc}). Fix or remove it."
        raise error(msg) from exc
    if entry is None:
        return {}
    login, _, password = entry
    pair = base64.b64encode(f"{login}:{password or ''}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}
