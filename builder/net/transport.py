"""The one HTTP transport of the host side: requests, retries, backoff, timeouts, proxies.

Downloads (downloads.py), the registry client (registry.py, registry_auth.py) and the
Risoluto client (orchestrator/risoluto.py) all send their requests through here, so they
share one policy, `Retry`:

- What is retried: no answer at all (no connection, a reset, a read timeout) and HTTP 5xx
  and 429; any other status fails at once, because waiting will not fix it. Each client
  turns that other status into its own message.
- How often: `attempts` in all (3: `limits.RETRIES` + 1, as many as the build steps' tools
  make), waiting `first_wait` (1 s) before the second and twice as long before each later
  one (1 s, 2 s, 4 s ...).
- How long: each connection and each read waits `limits.net_timeout()` (SANDBOX_NET_TIMEOUT)
  at most, or `timeout_cap` when that is smaller; one download as a whole (every attempt,
  every read) may take `limits.step_timeout()` (SANDBOX_STEP_TIMEOUT): `Deadline`.

Where a client differs it says so as a parameter of `Retry`, for a reason:

- Risoluto (`RISOLUTO` below) waits 0.5 s, then 1 s, and each request at most 10 s: it is
  an operator's own server, usually on this host, and an operator waits for the answer.
  A 429 is not retried: public mirrors and registries rate-limit, so downloads and the
  registry wait it out, but from Risoluto's config API it is a refusal to report. Every
  method is retried, the PUT too: it deep-merges the same values, so one that applied
  before its answer was lost applies again to the same result, and a retried DELETE that
  applied meets a 404 `overlay_path_not_found`, which counts as done.
- The registry's client takes its number of attempts from its caller (`Registry(retries=)`).

Credentials are always added "unredirected", so a redirect to another host (a CDN, blob
storage, a presigned URL) never carries them. A loopback host never goes through a proxy
(as in Go's net/http): through one, a server would see the proxy, not a loopback client.
"""

from __future__ import annotations

import http.client
import ipaddress
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from builder.core import limits
from builder.core.errors import BuilderError

USER_AGENT = "sandbox-builder/0.1 (+urllib)"
CHUNK = 1 << 20  # bytes read or sent at a time

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Retry:
    """When a request is tried again, how often, how far apart, and how long each waits."""

    attempts: int = limits.RETRIES + 1  # in all: as many as apt, pip, npm and wget make
    first_wait: float = 1.0  # seconds before the second attempt; doubles before each later one
    retry_429: bool = True  # HTTP 429 (too many requests) is transient, as 5xx is
    timeout_cap: float | None = None  # at most this many seconds per request, if smaller

    def transient(self, status: int) -> bool:
        """Whether an answer with HTTP `status` may pass on another attempt."""
        return status >= 500 or (status == 429 and self.retry_429)

    def timeout(self) -> float:
        """Seconds one connection or read may wait for an answer."""
        seconds = limits.net_timeout()
        return seconds if self.timeout_cap is None else min(self.timeout_cap, seconds)


DEFAULT = Retry()
RISOLUTO = Retry(first_wait=0.5, retry_429=False, timeout_cap=10.0)


class Transient(Exception):
    """A failure another attempt may not meet; `answered`: the server answered (5xx, 429)."""

    def __init__(self, reason: str, *, answered: bool) -> None:
        super().__init__(reason)
        self.answered = answered


def retrying(
    attempt: Callable[[], T], policy: Retry, gave_up: Callable[[Transient], BuilderError]
) -> T:
    """`attempt()`, tried again on `Transient` as `policy` says; `gave_up(last)` is raised."""
    attempts = max(1, policy.attempts)
    for number in range(1, attempts + 1):
        try:
            return attempt()
        except Transient as exc:
            if number == attempts:
                raise gave_up(exc) from exc
        time.sleep(policy.first_wait * 2 ** (number - 1))
    raise AssertionError  # the last attempt returns or raises


def request(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    secret: Mapping[str, str] | None = None,
) -> urllib.request.Request:
    """A request carrying our User-Agent, `headers`, and `secret` (credentials) unredirected."""
    built = urllib.request.Request(url, method=method, headers={"User-Agent": USER_AGENT})
    for name, value in (headers or {}).items():
        built.add_header(name, value)
    for name, value in (secret or {}).items():
        built.add_unredirected_header(name, value)
    return built


def opener(url: str) -> urllib.request.OpenerDirector:
    """What opens `url`: any configured proxy, except for a loopback host."""
    if is_loopback(urlsplit(url).netloc):
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def is_loopback(netloc: str) -> bool:
    """Whether `netloc` (`host[:port]`) is this machine: localhost, 127.0.0.0/8 or ::1."""
    name = urlsplit(f"//{netloc}").hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def reason(exc: BaseException) -> str:
    """Why a request got no answer, in a few words."""
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def redact(url: str) -> str:
    """`url` without any user:password part, safe to show."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


class Deadline:
    """The overall bound of one download: SANDBOX_STEP_TIMEOUT from its first request.

    A server that trickles a byte every few seconds never trips a read timeout; reading
    through `chunks` stops it within one read timeout of the limit.
    """

    def __init__(self, *, url: str, what: str, error: type[BuilderError]) -> None:
        self.url, self.what, self.error = url, what, error
        self.limit = limits.step_timeout()
        self.started = time.monotonic()
        self.received = 0

    def check(self, got: int) -> None:
        self.received += got
        seconds = time.monotonic() - self.started
        if seconds > self.limit:
            msg = (
                f"{self.what}: downloading {redact(self.url)} was stopped after "
                f"{seconds:.0f}s with {self.received:,} bytes received (the limit of one "
                f"download, {limits.STEP_TIMEOUT_ENV}={self.limit:g}). The server sends too "
                "slowly (a trickling server or proxy): check the network and the mirror, or "
                f"raise {limits.STEP_TIMEOUT_ENV} if it is just slow, then run the command again."
            )
            raise self.error(msg)

    def chunks(self, response: http.client.HTTPResponse) -> Iterator[bytes]:
        """The body as the network gives it (each read returns what one arrival brought, so
        a trickle is seen), checked against the deadline after each read."""
        while chunk := response.read1(CHUNK):
            self.check(len(chunk))
            yield chunk
