"""Apply the overlay to a running Risoluto and confirm it took (DESIGN.md §7).

The API, as the real server implements it: `PUT /api/v1/config/overlay` with the overlay
itself as a JSON object deep-merges it into the stored overlay (objects merge, lists and
scalars replace), so the operator's other settings, under `codex` or elsewhere, stay. The
server then re-derives its effective config (`GET /api/v1/config`: its workflow config with
the overlay merged on top); reading that back, rather than the overlay echo, proves the
server accepted the result, since one that rejects a config keeps the last good one.

Writes are accepted from loopback only, unless the server has a write token: then every
write (and every read from off the host) needs `Authorization: Bearer <token>`. The token
comes from RISOLUTO_WRITE_TOKEN; it is sent "unredirected" and never shown, not even when
the server quotes it back. A loopback URL bypasses any HTTP proxy: through one, the server
would see the proxy, not a loopback client, and refuse the write.

The server redacts values that look secret in the effective config (a mount such as
`/srv/token:/home/agent/token:ro` reads back as `/srv/token:[REDACTED]`; the overlay echoes
are not redacted), so a read-back string holding `[REDACTED]` confirms the value when the
parts shown match what was sent.

A PUT never removes a key, so an apply first reads the overlay Risoluto holds and DELETEs
(`/api/v1/config/overlay/<dotted.key>`) the keys an earlier apply set that this overlay no
longer holds (orchestrator/applied.py: the record lives in that overlay, so every applier
sees it): each only while it still holds the value that apply sent, so a key someone else
has changed since stays, and is reported. Every value is type-checked (overlay.py)
before anything is sent.

Requests go through the one transport, net/transport.py, with its Risoluto policy (`RETRY`, its
differences explained there): unreachable servers and HTTP 5xx are tried three times in all,
after 0.5 s and 1 s, each waiting at most 10 s; any other refusal fails at once, because
waiting will not fix it.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import urllib.error
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from builder.core.errors import OverlayError
from builder.core.keys import canonical_bytes
from builder.net import transport
from builder.net.transport import Transient
from builder.orchestrator import applied
from builder.orchestrator.overlay import MISSING, check_types, leaves, lookup

TOKEN_ENV = "RISOLUTO_WRITE_TOKEN"
OVERLAY_API = "/api/v1/config/overlay"
CONFIG_API = "/api/v1/config"
RETRY = transport.RISOLUTO
EXAMPLE_URL = "http://127.0.0.1:4000"
REDACTED = "[REDACTED"  # the server's "[REDACTED]" and "[REDACTED_OBJECT]"


@dataclass(frozen=True, kw_only=True)
class ApplyResult:
    """What a successful apply did: where, whether anything changed, what was confirmed."""

    url: str
    updated: bool  # False: the server already had every value (re-applying is harmless)
    confirmed: tuple[str, ...]  # dotted keys read back from the effective config
    image: str | None
    removed: tuple[str, ...] = ()  # dotted keys an earlier apply set, now DELETEd
    left: tuple[str, ...] = ()  # keys to remove that someone else changed since: kept

    def to_json(self) -> dict[str, Any]:
        """The `applied` object of `build --json`."""
        return {"url": self.url, "ok": True, "removed": list(self.removed), "left": list(self.left)}


def check_url(url: str) -> str:
    """Risoluto's base URL, normalized; an OverlayError for anything but http(s)://host[:port].

    The full endpoint pasted by mistake (`.../api/v1/config/overlay`) is accepted too.
    """
    shown = url.strip()
    parts = urlsplit(shown)
    if "@" in parts.netloc:  # never echo what may be a password
        msg = f"no credentials in Risoluto's URL, please: put the write token in {TOKEN_ENV}"
        raise OverlayError(msg)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = (
            f"{shown!r} is not an http:// or https:// URL of a host. Pass Risoluto's address, "
            f"e.g. {EXAMPLE_URL}"
        )
        raise OverlayError(msg)
    try:
        _ = parts.port  # urlsplit checks the port only when asked
    except ValueError as exc:
        msg = f"{shown}: the port is not a number from 0 to 65535. Pass e.g. {EXAMPLE_URL}"
        raise OverlayError(msg) from exc
    if parts.query or parts.fragment:
        msg = f"{shown}: pass Risoluto's base address without ?query or #fragment"
        raise OverlayError(msg)
    path = parts.path.rstrip("/").removesuffix(OVERLAY_API)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def read_overlay(path: Path) -> dict[str, Any]:
    """The overlay a build wrote at `path`."""
    try:
        overlay = json.loads(path.read_text())
    except FileNotFoundError as exc:
        msg = f"{path}: no overlay yet. Run `sandbox build` first"
        raise OverlayError(msg) from exc
    except (OSError, ValueError) as exc:
        msg = f"{path} cannot be read as JSON ({exc}). Run `sandbox build` again to rewrite it"
        raise OverlayError(msg) from exc
    if not isinstance(overlay, dict) or not _settings(overlay):
        msg = f"{path} has no codex.sandbox settings. Run `sandbox build` again to rewrite it"
        raise OverlayError(msg)
    return overlay


def apply_overlay(
    overlay: dict[str, Any],
    url: str,
    *,
    token: str | None,
    source: str = "the overlay",
    here: Mapping[str, Any] | None = None,
    stored: Callable[[], None] | None = None,
) -> ApplyResult:
    """Read Risoluto's overlay at `url`, DELETE the keys an earlier apply recorded there (or
    this checkout recorded, `here`: dotted key -> value sent) that `overlay` dropped and that
    still hold what was set, PUT `overlay` with the new record (orchestrator/applied.py), call
    `stored()` once the PUT is in, then read the effective config back to confirm it.

    Every value sent under `codex.sandbox` must read back as sent; otherwise an OverlayError
    names the keys that differ. `source` names the overlay in errors.
    """
    base, token = _ready(overlay, url, token, source)
    plan = applied.plan(overlay, base, stored=_stored(base, token), here=here)
    for key in sorted(plan.remove):
        _call("DELETE", base, f"{OVERLAY_API}/{quote(key, safe='.')}", token=token, body=None)
    body = json.dumps({**overlay, **applied.record(overlay)}).encode()
    reply = _call("PUT", base, OVERLAY_API, token=token, body=body)
    if not isinstance(reply, dict) or not isinstance(reply.get("overlay"), dict):
        raise OverlayError(_unexpected(base, "PUT", OVERLAY_API, reply))
    if stored is not None:
        stored()
    effective = _call("GET", base, CONFIG_API, token=token, body=None)
    if not isinstance(effective, dict):
        raise OverlayError(_unexpected(base, "GET", CONFIG_API, effective))
    confirmed = _confirm(overlay, effective, base)
    image = _settings(overlay).get("image")
    return ApplyResult(
        url=base,
        updated=bool(reply.get("updated", True)) or bool(plan.remove),
        confirmed=confirmed,
        image=image if isinstance(image, str) else None,
        removed=tuple(sorted(plan.remove)),
        left=plan.left,
    )


def preview(
    overlay: dict[str, Any],
    url: str,
    *,
    token: str | None,
    source: str = "the overlay",
    here: Mapping[str, Any] | None = None,
) -> applied.ApplyPlan:
    """What `apply_overlay` would do at `url` now: it reads Risoluto's overlay, writes
    nothing (`overlay apply --dry-run`)."""
    base, token = _ready(overlay, url, token, source)
    return applied.plan(overlay, base, stored=_stored(base, token), here=here)


def _ready(
    overlay: dict[str, Any], url: str, token: str | None, source: str
) -> tuple[str, str | None]:
    """The base URL and token, once the overlay is known to be one Risoluto reads as sent."""
    base = check_url(url)
    if not _settings(overlay):
        msg = "the overlay has no codex.sandbox settings to apply. Run `sandbox build` again"
        raise OverlayError(msg)
    check_types(overlay, source)
    return base, _check_token(token)


def _stored(base: str, token: str | None) -> dict[str, Any]:
    """The overlay Risoluto holds now (GET /api/v1/config/overlay)."""
    reply = _call("GET", base, OVERLAY_API, token=token, body=None)
    stored = reply.get("overlay") if isinstance(reply, dict) else None
    if not isinstance(stored, dict):
        raise OverlayError(_unexpected(base, "GET", OVERLAY_API, reply))
    return stored


def _settings(overlay: dict[str, Any]) -> dict[str, Any]:
    codex = overlay.get("codex")
    sandbox = codex.get("sandbox") if isinstance(codex, dict) else None
    return sandbox if isinstance(sandbox, dict) else {}


def _check_token(token: str | None) -> str | None:
    token = (token or "").strip()
    if token and not all(" " < c <= "~" for c in token):
        # http.client would put the header value, so the token, in its exception
        msg = (
            f"{TOKEN_ENV} holds a character an HTTP header cannot carry (a space, a newline "
            "or a non-ASCII character). Set it to the token exactly as Risoluto has it"
        )
        raise OverlayError(msg)
    return token or None


# -- HTTP -------------------------------------------------------------------------------------


def _call(method: str, base: str, api: str, *, token: str | None, body: bytes | None) -> Any:
    """One API call with the retry policy; returns the reply's JSON."""

    def gave_up(last: Transient) -> OverlayError:
        if last.answered:
            return OverlayError(
                f"Risoluto at {base} failed {method} {api} {RETRY.attempts} times (last: "
                f"{last}). Check its log, then run the command again"
            )
        return OverlayError(
            f"cannot {method} {base}{api} after {RETRY.attempts} attempts ({last}). Is Risoluto "
            f"running at {base}? Start it, or pass its address (e.g. {EXAMPLE_URL})"
        )

    return transport.retrying(
        lambda: _once(method, base, api, token=token, body=body), RETRY, gave_up
    )


def _once(method: str, base: str, api: str, *, token: str | None, body: bytes | None) -> Any:
    headers = {"Accept": "application/json"}
    if body is not None:
        # without it the server parses no body and refuses the PUT (400 invalid_overlay_payload)
        headers["Content-Type"] = "application/json"
    secret = {"Authorization": f"Bearer {token}"} if token else {}
    request = transport.request(base + api, method=method, headers=headers, secret=secret)
    request.data = body
    try:
        with transport.opener(base).open(request, timeout=RETRY.timeout()) as response:
            raw: bytes = response.read()
            if method == "DELETE" and response.status == 204:
                return None
    except urllib.error.HTTPError as exc:
        with exc:
            raw_error = _read_quietly(exc)
            detail = _server_message(raw_error, token)
        if method == "DELETE" and exc.code == 404 and b"overlay_path_not_found" in raw_error:
            return None  # gone between our read and the delete: what we wanted
        if RETRY.transient(exc.code):
            status = f"HTTP {exc.code}: {detail}"
            raise Transient(status, answered=True) from exc
        raise OverlayError(_refused(exc.code, detail, base, method, api, token)) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLError):
            msg = (
                f"TLS with {base} failed ({exc.reason}). Check its certificate, or point "
                "SSL_CERT_FILE at the CA bundle that signed it"
            )
            raise OverlayError(msg) from exc
        raise Transient(str(exc.reason), answered=False) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise Transient(transport.reason(exc), answered=False) from exc
    try:
        return json.loads(raw)
    except ValueError as exc:
        shown = _server_message(raw, token)
        msg = (
            f"{base} answered {method} {api} with something that is not JSON ({shown!r}). "
            f"Is {base} Risoluto's address, not another service or a proxy's page?"
        )
        raise OverlayError(msg) from exc


def _read_quietly(exc: urllib.error.HTTPError) -> bytes:
    try:
        data: bytes = exc.read()
    except (OSError, http.client.HTTPException):
        return b""
    return data


def _refused(code: int, detail: str, base: str, method: str, api: str, token: str | None) -> str:
    where = f"Risoluto at {base} refused {method} {api} (HTTP {code}: {detail})"
    if code == 401:
        held = f"the token in {TOKEN_ENV} is wrong" if token else f"{TOKEN_ENV} is not set"
        return (
            f"{where}: token missing or wrong: set {TOKEN_ENV} to the write token Risoluto "
            f"was started with ({held})"
        )
    if code == 403:
        return (
            f"{where}: it accepts writes from its own host only, unless it has a write token. "
            f"Run this on that host with a loopback URL, or start Risoluto with {TOKEN_ENV} and "
            f"set the same value here (token missing or wrong: set {TOKEN_ENV})"
        )
    if code in (404, 405):
        return f"{where}. Is {base} Risoluto's address, and is it a version with the config API?"
    if code == 400:
        return (
            f"{where}: it rejected the overlay. Check it with `sandbox overlay show`; "
            "`sandbox build` rewrites it"
        )
    return f"{where}. Check Risoluto's log"


def _server_message(raw: bytes, token: str | None) -> str:
    """The server's `{"error": {"code", "message"}}` as one short line, or its text trimmed."""
    text = raw.decode("utf-8", errors="replace")
    try:
        error = json.loads(text).get("error")
        text = f"{error['message']} ({error['code']})" if "code" in error else error["message"]
    except (ValueError, AttributeError, TypeError, KeyError):
        text = re.sub(r"<[^>]*>", " ", text)  # a web page: its words are enough
    text = " ".join(text.split()) or "no message"
    return _scrub(text if len(text) <= 200 else text[:199] + "…", token)


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def _unexpected(base: str, method: str, api: str, reply: Any) -> str:
    shown = json.dumps(reply)[:120]
    return (
        f"{base} answered {method} {api} with JSON of an unexpected shape ({shown}). "
        "Is it Risoluto, and a version with the config overlay API?"
    )


# -- read-back ---------------------------------------------------------------------------------


def _confirm(overlay: dict[str, Any], effective: dict[str, Any], base: str) -> tuple[str, ...]:
    confirmed, differ = [], []
    for path, sent in leaves(overlay):
        got = lookup(effective, path)
        name = ".".join(path)
        if got is not MISSING and _consistent(sent, got):
            confirmed.append(name)
        else:
            shown = "nothing" if got is MISSING else _short(got)
            differ.append(f"{name} (sent {_short(sent)}, it has {shown})")
    if differ:
        msg = (
            f"Risoluto at {base} took the overlay but its effective config ({CONFIG_API}) "
            f"differs at {'; '.join(differ)}. Another writer may have changed it, or Risoluto "
            "rejected the new config and kept the last good one (see its log). Fix that, then "
            f"run `sandbox overlay apply {base}` again"
        )
        raise OverlayError(msg)
    return tuple(confirmed)


def _consistent(sent: Any, got: Any) -> bool:
    """`got` reads back as `sent`, allowing the parts the server redacts."""
    if canonical_bytes(sent) == canonical_bytes(got):
        return True
    if isinstance(got, str) and got.startswith(REDACTED) and got.endswith("]"):
        return True  # the whole value hidden
    if isinstance(sent, str) and isinstance(got, str) and "[REDACTED]" in got:
        shown = (re.escape(part) for part in got.split("[REDACTED]"))
        return re.fullmatch(".+?".join(shown), sent, re.DOTALL) is not None
    if isinstance(sent, list) and isinstance(got, list) and len(sent) == len(got):
        return all(_consistent(s, g) for s, g in zip(sent, got, strict=True))
    return False


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:79] + "…"
