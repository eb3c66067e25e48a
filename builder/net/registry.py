"""A small client for the OCI distribution API (registry v2): blobs in, blobs out, manifests.

Publishing pushes our layers as deterministic gzip blobs (builder/blobs.py) next to the image
config we write ourselves, so a manifest has the same digest on every machine (DESIGN.md §6).
This module only moves those bytes; callers build the manifests and decide what to push.

Transport is Docker's: plain http for a loopback host (127.0.0.0/8, localhost, ::1), which
Docker trusts as an insecure registry by default, and https for any other host. Loopback
traffic never goes through a proxy (as in Go's net/http). Transient failures (no connection,
a reset, HTTP 5xx or 429) get `retries` attempts in all, 1 s, 2 s, 4 s ... apart; any other
refusal fails at once with the registry's own error message, because waiting will not fix it.

Credentials come from the Docker CLI's config, `$DOCKER_CONFIG/config.json` or else
`~/.docker/config.json`: the base64 `user:password` that `docker login` writes to
`auths.<host>.auth`. Credential helpers (`credsStore`, `credHelpers`) are not run, since that
means executing `docker-credential-*` programs whose prompts and keychains a build must not
depend on; the unauthorized error says so when the config names one.

Auth answers the registry's 401 challenge. `Basic` sends the credentials. `Bearer` fetches a
token from the challenge's realm (with the credentials when there are some, and only over
https or loopback) for the scope the call needs, and caches it per scope for the life of the
`Registry`; an expired token meets a 401 and is fetched once more. The Authorization header
is "unredirected", so a redirect to blob storage never carries it, and no message shows it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import http.client
import ipaddress
import json
import os
import re
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import BinaryIO, TypeVar
from urllib.parse import quote, urlencode, urljoin, urlsplit

from builder.core import limits
from builder.core.errors import CacheError, RegistryError
from builder.net.downloads import USER_AGENT

BACKOFF = 1.0  # seconds before the second attempt; doubles before each later one
_CHUNK = 1 << 20
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^",\s]*))')
_ANY_SCOPE = ""  # the cache key of Basic credentials, which serve every scope
_DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
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


class _Transient(Exception):
    """A failure another attempt may not meet; `connection` when no HTTP answer came."""

    def __init__(self, reason: str, *, connection: bool) -> None:
        super().__init__(reason)
        self.connection = connection


@dataclass(frozen=True, kw_only=True)
class _Reply:
    status: int
    headers: Message
    body: bytes


@dataclass(frozen=True, kw_only=True)
class _Upload:
    """A file streamed as a request body; it must hash to `digest` (`sha256:<hex>`)."""

    path: Path
    digest: str


class Registry:
    """One registry host. Safe to share between threads: its only state is the token cache."""

    def __init__(self, host: str, *, docker_config: Path | None = None, retries: int = 3) -> None:
        """`host` is `name[:port]`; `docker_config` is a config.json (default: Docker's).

        `retries` is the number of attempts in all that a transient failure gets.
        """
        if "/" in host or not host:
            msg = f"registry {host!r} is not a host: write it as `name[:port]` (no scheme, no path)"
            raise RegistryError(msg)
        self.host = host
        self.retries = max(1, retries)
        loopback = _is_loopback(host)
        self._base = f"{'http' if loopback else 'https'}://{host}"
        self._config = docker_config or _default_config()
        self._basic, self._helper = _credentials(host, self._config)
        self._auth: dict[str, str] = {}  # scope -> Authorization header value
        self._lock = threading.Lock()

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
            upload = _Upload(path=path, digest=digest)
            self._once("PUT", url, scope=scope, what=what, body=upload)

        self._retrying(upload, what)
        return True

    def pull_blob(self, repo: str, digest: str, dest: Path) -> None:
        """Download blob `digest` to `dest`, checked, via a temporary file and a rename.

        A killed or corrupt download never leaves anything under `dest`. Redirects (blob
        storage behind the registry) are followed, without our credentials.
        """
        _check_digest(digest)
        what = f"downloading blob {digest} from {repo}"

        def download() -> tuple[Path, str]:
            try:
                handle, name = tempfile.mkstemp(dir=dest.parent, prefix=".partial-")
            except OSError as exc:
                raise _write_error(dest, exc) from exc
            partial, hasher = Path(name), hashlib.sha256()
            try:
                with os.fdopen(handle, "wb") as out:

                    def sink(response: http.client.HTTPResponse) -> None:
                        while chunk := response.read(_CHUNK):
                            hasher.update(chunk)
                            try:
                                out.write(chunk)
                            except OSError as exc:
                                raise _write_error(dest, exc) from exc

                    url = f"/v2/{repo}/blobs/{digest}"
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
        reply = self._retrying(
            lambda: self._once(
                "GET",
                url,
                scope=_scope(repo, push=False),
                what=what,
                headers=headers,
                allow_404=True,
            ),
            what,
        )
        if reply.status == 404:
            message = _error_text(reply.body)[0]
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

    # -- transport -------------------------------------------------------------------

    def _has_blob(self, repo: str, digest: str, scope: str) -> bool:
        _check_digest(digest)
        what = f"checking for blob {digest} in {repo}"
        url = f"/v2/{repo}/blobs/{digest}"
        reply = self._retrying(
            lambda: self._once("HEAD", url, scope=scope, what=what, allow_404=True), what
        )
        return reply.status != 404

    def _retrying(self, attempt: Callable[[], T], what: str) -> T:
        for number in range(1, self.retries + 1):
            try:
                return attempt()
            except _Transient as exc:
                if number == self.retries:
                    raise self._gave_up(what, exc) from exc
                time.sleep(BACKOFF * 2 ** (number - 1))
        raise AssertionError  # the last attempt returns or raises

    def _once(
        self,
        method: str,
        url: str,
        *,
        scope: str,
        what: str,
        headers: dict[str, str] | None = None,
        body: bytes | _Upload | None = None,
        allow_404: bool = False,
        sink: Callable[[http.client.HTTPResponse], None] | None = None,
    ) -> _Reply:
        """One exchange, plus the one repeat that answering an auth challenge needs."""
        url = urljoin(self._base, url)
        ours = urlsplit(url).netloc == self.host
        for challenged in (False, True):
            sent = self._cached_auth(scope) if ours else None
            request = urllib.request.Request(url, method=method, headers={"User-Agent": USER_AGENT})
            for name, value in (headers or {}).items():
                request.add_header(name, value)
            if sent:
                request.add_unredirected_header("Authorization", sent)
            with contextlib.ExitStack() as stack:
                stream = None
                if isinstance(body, _Upload):
                    stream = stack.enter_context(_Stream.open(body))
                    request.add_header("Content-Type", "application/octet-stream")
                    request.add_header("Content-Length", str(stream.size))
                    request.data = stream
                else:
                    request.data = body
                try:
                    with _opener(url).open(request, timeout=limits.net_timeout()) as response:
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
                            self._answer(exc.headers.get("WWW-Authenticate", ""), scope, sent)
                            continue
                        if exc.code == 404 and allow_404:
                            return _Reply(status=404, headers=exc.headers, body=exc.read(65536))
                        raise self._refusal(exc, what) from None
                except (OSError, http.client.HTTPException) as exc:
                    raise _Transient(_reason(exc), connection=True) from exc
        raise AssertionError  # the second round returns or raises

    def _cached_auth(self, scope: str) -> str | None:
        with self._lock:
            return self._auth.get(scope) or self._auth.get(_ANY_SCOPE)

    def _answer(self, challenge: str, scope: str, sent: str | None) -> None:
        """Get credentials that meet `challenge` for `scope` into the cache."""
        kind, _, rest = challenge.strip().partition(" ")
        params = {m[0].lower(): m[1] or m[2] for m in _PARAM.findall(rest)}
        with self._lock:  # one thread fetches; the others then find its token
            cached = self._auth.get(scope) or self._auth.get(_ANY_SCOPE)
            if cached and cached != sent:
                return
            if kind.lower() == "bearer" and "realm" in params:
                scopes = [*params.get("scope", "").split(), scope]
                self._auth[scope] = f"Bearer {self._token(params, sorted(set(scopes)))}"
            elif kind.lower() == "basic" and self._basic and sent != self._basic:
                self._auth[_ANY_SCOPE] = self._basic
            else:
                raise self._unauthorized()

    def _token(self, params: dict[str, str], scopes: list[str]) -> str:
        """A token from the challenge's realm (the registry's token server)."""
        realm = params["realm"]
        query = [("service", params["service"])] if "service" in params else []
        query += [("scope", s) for s in scopes if s]
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        parts = urlsplit(url)
        if self._basic and (parts.scheme == "https" or _is_loopback(parts.netloc)):
            request.add_unredirected_header("Authorization", self._basic)
        try:
            with _opener(url).open(request, timeout=limits.net_timeout()) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                if exc.code >= 500 or exc.code == 429:
                    reason = f"token server {realm}: HTTP {exc.code} {exc.reason}"
                    raise _Transient(reason, connection=False) from None
                if exc.code in (401, 403):
                    raise self._unauthorized() from None
                msg = (
                    f"registry {self.host}: its token server {realm} answered HTTP {exc.code} "
                    f"({_error_text(exc.read(65536))[0]}). Check the registry's auth setup."
                )
                raise RegistryError(msg) from None
        except (OSError, http.client.HTTPException) as exc:
            reason = f"token server {realm}: {_reason(exc)}"
            raise _Transient(reason, connection=True) from exc
        except ValueError as exc:
            msg = f"registry {self.host}: its token server {realm} did not answer JSON ({exc})"
            raise RegistryError(msg) from exc
        token = (
            (answer.get("token") or answer.get("access_token"))
            if isinstance(answer, dict)
            else None
        )
        if not isinstance(token, str) or not token:
            msg = f"registry {self.host}: its token server {realm} answered without a token"
            raise RegistryError(msg)
        return token

    def _refusal(self, exc: urllib.error.HTTPError, what: str) -> Exception:
        if exc.code >= 500 or exc.code == 429:
            return _Transient(f"HTTP {exc.code} {exc.reason}", connection=False)
        if exc.code == 401:
            return self._unauthorized()
        message, codes = _error_text(exc.read(65536))
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

    def _unauthorized(self) -> RegistryError:
        if self._basic is None:
            have = f"there are no credentials for it in {self._config}"
            if self._helper:
                have += " (a credential helper is configured there; this tool does not run it)"
        else:
            have = f"it refused the ones in {self._config}"
        return RegistryError(
            f"unauthorized: registry {self.host} needs credentials and {have}. Run "
            f"`docker login {self.host}`, then run this command again."
        )

    def _gave_up(self, what: str, exc: _Transient) -> RegistryError:
        if exc.connection:
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


class _Stream:
    """An upload body read in 1 MiB chunks and hashed on the way (http.client iterates it)."""

    def __init__(self, file: BinaryIO, upload: _Upload, size: int) -> None:
        self._file, self._upload, self.size = file, upload, size
        self._hasher, self._sent = hashlib.sha256(), 0

    @classmethod
    @contextlib.contextmanager
    def open(cls, upload: _Upload) -> Iterator[_Stream]:
        try:
            file = upload.path.open("rb")
        except OSError as exc:
            msg = f"cannot read {upload.path} to upload it as {upload.digest}: {exc.strerror}"
            raise RegistryError(msg) from exc
        with file:
            yield cls(file, upload, os.fstat(file.fileno()).st_size)

    def __iter__(self) -> Iterator[bytes]:
        while self._sent < self.size:
            chunk = self._file.read(min(_CHUNK, self.size - self._sent))
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


def _scope(repo: str, *, push: bool) -> str:
    return f"repository:{repo}:{'pull,push' if push else 'pull'}"


def _check_digest(digest: str) -> None:
    if not _DIGEST.fullmatch(digest):
        msg = f"{digest!r} is not a blob digest; expected `sha256:` and 64 lowercase hex digits"
        raise RegistryError(msg)


def _is_loopback(host: str) -> bool:
    name = urlsplit(f"//{host}").hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _opener(url: str) -> urllib.request.OpenerDirector:
    if _is_loopback(urlsplit(url).netloc):
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def _default_config() -> Path:
    folder = os.environ.get("DOCKER_CONFIG")
    return (Path(folder) if folder else Path.home() / ".docker") / "config.json"


def _credentials(host: str, config: Path) -> tuple[str | None, bool]:
    """The Basic header for `host` from Docker's config, and whether a helper is named."""
    try:
        data = json.loads(config.read_text())
    except FileNotFoundError:
        return None, False
    except (OSError, ValueError) as exc:
        msg = f"cannot read the Docker config {config} ({exc}). Fix it, or run `docker login`."
        raise RegistryError(msg) from exc
    if not isinstance(data, dict):
        msg = f"the Docker config {config} is not a JSON object. Fix it, or run `docker login`."
        raise RegistryError(msg)
    wanted = _DOCKER_HUB if host in _DOCKER_HUB else {host}
    helper = bool(data.get("credsStore")) or any(
        _key_host(key) in wanted for key in data.get("credHelpers") or {}
    )
    for key, entry in (data.get("auths") or {}).items():
        if _key_host(key) not in wanted or not isinstance(entry, dict) or not entry.get("auth"):
            continue
        try:
            pair = base64.b64decode(entry["auth"], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, TypeError) as exc:
            msg = (
                f"{config}: auths.{key}.auth is not base64 `user:password`. "
                f"Run `docker login {host}`."
            )
            raise RegistryError(msg) from exc
        if ":" not in pair:
            msg = f"{config}: auths.{key}.auth holds no `user:password`. Run `docker login {host}`."
            raise RegistryError(msg)
        return f"Basic {base64.b64encode(pair.encode()).decode()}", helper
    return None, helper


def _key_host(key: str) -> str:
    """The host of an `auths` key, which may be written as a URL (`https://host/v1/`)."""
    return key.split("://", 1)[-1].split("/", 1)[0]


def _error_text(body: bytes) -> tuple[str, list[str]]:
    """The registry's error message(s) from `{"errors": [{"code", "message", "detail"}]}`."""
    try:
        errors = json.loads(body)["errors"]
        texts, codes = [], []
        for error in errors:
            code, message, detail = error.get("code"), error.get("message"), error.get("detail")
            texts.append(f"{code}: {message}" + (f" ({detail})" if isinstance(detail, str) else ""))
            codes.append(str(code))
        return "; ".join(texts), codes
    except (ValueError, KeyError, TypeError, AttributeError):
        text = body.decode("utf-8", errors="replace").strip()[:200]
        return text or "no details", []


def _write_error(dest: Path, exc: OSError) -> CacheError:
    return CacheError(
        f"cannot write {dest}: {exc.strerror}. Free some space or point --cache-dir elsewhere."
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__
