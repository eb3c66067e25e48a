"""A small client for the OCI distribution API (registry v2): blobs in, blobs out, manifests.

Publishing pushes our layers as deterministic gzip blobs (builder/store/blobs.py) next to the image
config we write ourselves, so a manifest has the same digest on every machine (DESIGN.md §6).
This module only moves those bytes; callers build the manifests and decide what to push.

Transport is Docker's: plain http for a loopback host (127.0.0.0/8, localhost, ::1), which
Docker trusts as an insecure registry by default, and https for any other host. Requests go
through the one transport, net/transport.py, with its default policy: transient failures (no
connection, a reset, a read timeout, HTTP 5xx or 429) get `retries` attempts in all, 1 s, 2 s,
4 s ... apart; any other refusal fails at once with the registry's own error message, because
waiting will not fix it. Loopback traffic never goes through a proxy.

Credentials and the auth challenge are registry_auth.py's; the Authorization header is
"unredirected", so a redirect to blob storage never carries it, and no message shows it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import json
import os
import re
import tempfile
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urljoin, urlsplit

from builder.core.errors import CacheError, RegistryError
from builder.net import transport
from builder.net.blob_stream import Stream, Upload
from builder.net.registry_auth import Auth, error_text
from builder.net.transport import Deadline, Transient

RETRY = transport.DEFAULT  # its `attempts` is each Registry's `retries`
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# What to do about the registry error codes (distribution spec) that a caller can cause.
_HINTS = {
    "BLOB_UNKNOWN": "push the blob first",
    "MANIFEST_BLOB_UNKNOWN": "push every blob the manifest references first",
    "DIGEST_INVALID": "the data does not match its digest; rebuild it",
    "NAME_INVALID": "check the repository name (lowercase letters, digits, . _ - and /)",
    "TAG_INVALID": "check the tag (letters, digits, . _ -, at most 128 characters)",
    "MANIFEST_INVALID": "the manifest is malformed or names a media type the registry lacks",
    "UNSUPPORTED": "this registry does not support the operation",
}

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class _Reply:
    status: int
    headers: Message
    body: bytes


class Registry:
    """One registry host. Safe to share between threads: its only state is the token cache."""

    def __init__(
        self, host: str, *, docker_config: Path | None = None, retries: int = RETRY.attempts
    ) -> None:
        """`host` is `name[:port]`; `docker_config` is a config.json (default: Docker's).

        `retries` is the number of attempts in all that a transient failure gets.
        """
        if "/" in host or not host:
            msg = f"registry {host!r} is not a host: write it as `name[:port]` (no scheme, no path)"
            raise RegistryError(msg)
        self.host = host
        self.retries = max(1, retries)
        self._policy = dataclasses.replace(RETRY, attempts=self.retries)
        self._base = f"{'http' if transport.is_loopback(host) else 'https'}://{host}"
        self._auth = Auth(host, docker_config, self._policy)
        self._config = self._auth.config

    def has_blob(self, repo: str, digest: str) -> bool:
        return self._has_blob(repo, digest, _scope(repo, push=False))

    def push_blob(self, repo: str, digest: str, path: Path) -> bool:
        """Upload `path` as blob `digest` unless `repo` has it; True if it was uploaded.

        One monolithic upload (POST, then PUT of the whole file, streamed): our layers are
        files on disk of known size, so chunking would only add round trips. The bytes sent
        are hashed on the way; a file that does not match `digest` is refused by name.
        """
        _check_digest(digest)
        scope = _scope(repo, push=True)
        if self._has_blob(repo, digest, scope):
            return False
        what = f"uploading blob {digest} to {repo}"

        def upload() -> None:
            start = self._once("POST", f"/v2/{repo}/blobs/uploads/", scope=scope, what=what)
            if start.status == 201:  # the registry already completed it (a mount)
                return
            location = start.headers.get("Location")
            if start.status != 202 or not location:
                msg = f"registry {self.host}: {what}: no upload location (HTTP {start.status})"
                raise RegistryError(msg)
            url = urljoin(self._base, location)
            url += ("&" if "?" in url else "?") + urlencode({"digest": digest})
            upload = Upload(path=path, digest=digest)
            self._once("PUT", url, scope=scope, what=what, body=upload)

        self._retrying(upload, what)
        return True

    def pull_blob(self, repo: str, digest: str, dest: Path) -> None:
        """Download blob `digest` to `dest`, checked, via a temporary file and a rename.

        A killed or corrupt download never leaves anything under `dest`. Redirects (blob
        storage behind the registry) are followed, without our credentials. Every attempt
        together may take SANDBOX_STEP_TIMEOUT (`transport.Deadline`), so a trickle stops.
        """
        _check_digest(digest)
        what = f"downloading blob {digest} from {repo}"
        url = f"/v2/{repo}/blobs/{digest}"
        deadline = Deadline(
            url=urljoin(self._base, url), what=f"registry {self.host}", error=RegistryError
        )

        def download() -> tuple[Path, str]:
            try:
                handle, name = tempfile.mkstemp(dir=dest.parent, prefix=".partial-")
            except OSError as exc:
                raise _write_error(dest, exc) from exc
            partial, hasher = Path(name), hashlib.sha256()
            try:
                with os.fdopen(handle, "wb") as out:

                    def sink(response: http.client.HTTPResponse) -> None:
                        for chunk in deadline.chunks(response):
                            hasher.update(chunk)
                            try:
                                out.write(chunk)
                            except OSError as exc:
                                raise _write_error(dest, exc) from exc

                    self._once("GET", url, scope=_scope(repo, push=False), what=what, sink=sink)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            return partial, f"sha256:{hasher.hexdigest()}"

        partial, actual = self._retrying(download, what)
        if actual != digest:
            partial.unlink(missing_ok=True)
            msg = (
                f"registry {self.host}: {what}: the data it sent hashes to {actual}. Its storage "
                "(or a proxy in between) is corrupt; nothing was written. Delete the blob "
                "there and publish it again."
            )
            raise RegistryError(msg)
        partial.replace(dest)

    def put_manifest(self, repo: str, reference: str, manifest: bytes, media_type: str) -> str:
        """Store `manifest` under `reference` (a tag or its digest); return its digest."""
        digest = f"sha256:{hashlib.sha256(manifest).hexdigest()}"
        what = f"pushing manifest {repo}:{reference}"
        url = f"/v2/{repo}/manifests/{quote(reference, safe=':')}"
        headers = {"Content-Type": media_type}
        reply = self._retrying(
            lambda: self._once(
                "PUT", url, scope=_scope(repo, push=True), what=what, headers=headers, body=manifest
            ),
            what,
        )
        stored = reply.headers.get("Docker-Content-Digest")
        if stored and stored != digest:
            msg = (
                f"registry {self.host}: {what}: it stored the manifest as {stored}, but its "
                f"bytes hash to {digest}. The registry rewrote it; use one that stores "
                "manifests verbatim (any OCI distribution server does)."
            )
            raise RegistryError(msg)
        return digest

    def get_manifest(
        self, repo: str, reference: str, accept: list[str]
    ) -> tuple[bytes, str, str] | None:
        """The manifest's bytes, media type and digest, or None when `repo` lacks it.

        `accept` lists the media types the caller can read. The distribution server answers
        404 when it holds an OCI manifest the Accept header leaves out; that case is an
        error here, not a None that would read as "never published".
        """
        what = f"reading manifest {repo}:{reference}"
        url = f"/v2/{repo}/manifests/{quote(reference, safe=':')}"
        headers = {"Accept": ", ".join(accept)} if accept else {}
        reply = self._read("GET", url, scope=_scope(repo, push=False), what=what, headers=headers)
        if reply.status == 404:
            message = error_text(reply.body)[0]
            if "accept header" in message.lower():
                msg = (
                    f"registry {self.host}: {what}: {message}. Add that manifest's media type "
                    f"to the accepted ones (asked for: {', '.join(accept) or 'none'})."
                )
                raise RegistryError(msg)
            return None
        digest = f"sha256:{hashlib.sha256(reply.body).hexdigest()}"
        claimed = reply.headers.get("Docker-Content-Digest")
        expected = reference if reference.startswith("sha256:") else claimed
        if expected and expected.startswith("sha256:") and expected != digest:
            msg = (
                f"registry {self.host}: {what}: the bytes it sent hash to {digest}, not "
                f"{expected}. Its storage or a proxy in between altered them."
            )
            raise RegistryError(msg)
        media_type = (reply.headers.get("Content-Type") or "").split(";")[0].strip()
        if not media_type:
            with contextlib.suppress(ValueError, AttributeError):
                media_type = str(json.loads(reply.body).get("mediaType") or "")
        return reply.body, media_type, digest

    def referrers(self, repo: str, digest: str) -> list[dict[str, Any]] | None:
        """The descriptors of the manifests whose `subject` is `digest` (OCI 1.1 referrers
        API), or None when the registry has no such API (distribution 2.x answers 404)."""
        _check_digest(digest)
        what = f"listing the referrers of {repo}@{digest}"
        url = f"/v2/{repo}/referrers/{digest}"
        headers = {"Accept": "application/vnd.oci.image.index.v1+json"}
        reply = self._read("GET", url, scope=_scope(repo, push=False), what=what, headers=headers)
        if reply.status == 404:
            return None
        try:
            document = json.loads(reply.body)
        except ValueError:
            return None  # not an index: some other page, so no referrers API
        manifests = document.get("manifests") if isinstance(document, dict) else None
        return (
            [m for m in manifests if isinstance(m, dict)] if isinstance(manifests, list) else None
        )

    # -- transport -------------------------------------------------------------------

    def _has_blob(self, repo: str, digest: str, scope: str) -> bool:
        _check_digest(digest)
        what = f"checking for blob {digest} in {repo}"
        url = f"/v2/{repo}/blobs/{digest}"
        return self._read("HEAD", url, scope=scope, what=what).status != 404

    def _read(
        self, method: str, url: str, *, scope: str, what: str, headers: dict[str, str] | None = None
    ) -> _Reply:
        """A GET or HEAD that may find nothing (404 is an answer), retried as every exchange."""
        return self._retrying(
            lambda: self._once(
                method, url, scope=scope, what=what, headers=headers, allow_404=True
            ),
            what,
        )

    def _retrying(self, attempt: Callable[[], T], what: str) -> T:
        return transport.retrying(attempt, self._policy, lambda exc: self._gave_up(what, exc))

    def _once(
        self,
        method: str,
        url: str,
        *,
        scope: str,
        what: str,
        headers: dict[str, str] | None = None,
        body: bytes | Upload | None = None,
        allow_404: bool = False,
        sink: Callable[[http.client.HTTPResponse], None] | None = None,
    ) -> _Reply:
        """One exchange, plus the one repeat that answering an auth challenge needs."""
        url = urljoin(self._base, url)
        ours = urlsplit(url).netloc == self.host
        for challenged in (False, True):
            sent = self._auth.cached(scope) if ours else None
            secret = {"Authorization": sent} if sent else {}
            request = transport.request(url, method=method, headers=headers, secret=secret)
            with contextlib.ExitStack() as stack:
                stream = None
                if isinstance(body, Upload):
                    stream = stack.enter_context(Stream.open(body))
                    request.add_header("Content-Type", "application/octet-stream")
                    request.add_header("Content-Length", str(stream.size))
                    request.data = stream
                else:
                    request.data = body
                try:
                    with transport.opener(url).open(
                        request, timeout=self._policy.timeout()
                    ) as response:
                        if stream:
                            stream.verify()
                        if sink:
                            sink(response)
                            return _Reply(
                                status=response.status, headers=response.headers, body=b""
                            )
                        data: bytes = response.read()
                        return _Reply(status=response.status, headers=response.headers, body=data)
                except urllib.error.HTTPError as exc:
                    with exc:
                        if stream:  # a wrong file explains the registry's DIGEST_INVALID best
                            stream.verify()
                        if exc.code == 401 and not challenged and ours:
                            self._auth.answer(exc.headers.get("WWW-Authenticate", ""), scope, sent)
                            continue
                        if exc.code == 404 and allow_404:
                            return _Reply(status=404, headers=exc.headers, body=exc.read(65536))
                        raise self._refusal(exc, what) from None
                except (OSError, http.client.HTTPException) as exc:
                    raise Transient(transport.reason(exc), answered=False) from exc
        raise AssertionError  # the second round returns or raises

    def _refusal(self, exc: urllib.error.HTTPError, what: str) -> Exception:
        if self._policy.transient(exc.code):
            return Transient(f"HTTP {exc.code} {exc.reason}", answered=True)
        if exc.code == 401:
            return self._auth.unauthorized()
        message, codes = error_text(exc.read(65536))
        if exc.code == 403:
            return RegistryError(
                f"denied: registry {self.host} refused {what} (HTTP 403: {message}). The "
                f"account in {self._config} lacks that right: check its permissions on the "
                "repository, or publish to another one."
            )
        hints = [_HINTS[code] for code in codes if code in _HINTS]
        hint = "; ".join(hints) or "this will not pass on a retry; check the request"
        return RegistryError(
            f"registry {self.host}: {what} was refused (HTTP {exc.code}: {message}): {hint}."
        )

    def _gave_up(self, what: str, exc: Transient) -> RegistryError:
        if not exc.answered:
            return RegistryError(
                f"cannot reach registry {self.host} while {what} ({exc}), after "
                f"{self.retries} attempts. Is the registry running, and is [image].registry "
                "in sandbox.toml right? Nothing local was lost; run the command again."
            )
        return RegistryError(
            f"registry {self.host} kept failing while {what} (last: {exc}), after "
            f"{self.retries} attempts. It may be overloaded or down: try again later or "
            "check its logs. Nothing local was lost."
        )


def _scope(repo: str, *, push: bool) -> str:
    return f"repository:{repo}:{'pull,push' if push else 'pull'}"


def _check_digest(digest: str) -> None:
    if not _DIGEST.fullmatch(digest):
        msg = f"{digest!r} is not a blob digest; expected `sha256:` and 64 lowercase hex digits"
        raise RegistryError(msg)


def _write_error(dest: Path, exc: OSError) -> CacheError:
    return CacheError(
        f"cannot write {dest}: {exc.strerror}. Free some space or point --cache-dir elsewhere."
    )
