"""A stand-in for Risoluto's config API that behaves as the real server does (DESIGN.md §7).

Modelled on Risoluto's source (src/http/routes/config.ts, write-guard.ts, read-guard.ts,
service-errors.ts, config/overlay-helpers.ts, config/merge.ts, core/content-sanitizer.ts):

- `PUT /api/v1/config/overlay` deep-merges a JSON object into the stored overlay (objects
  merge, lists and scalars replace, null is stored) and answers `{"updated", "overlay"}`. A
  body `{"patch": {...}}` is unwrapped, its dotted keys expanded. The body is parsed only
  with `Content-Type: application/json`; without it the server sees `{}`, merges nothing and
  still answers 200. Bad JSON or a top-level scalar: 400 invalid_request_body; an array: 400
  invalid_overlay_payload; over 1 MiB: 413.
- `GET /api/v1/config/overlay` -> `{"overlay": ...}`; `GET /api/v1/config` -> the effective
  config: the server's own config with the overlay deep-merged on top.
- `PATCH /api/v1/config/overlay/<dotted.path>` with `{"value": x}`; `DELETE` -> 204 or 404.
- Writes: with a write token every write needs `Authorization: Bearer <token>`, from any
  client (401 write_unauthorized when missing or wrong); without one only loopback clients
  may write (403 write_forbidden). Reads of /api/v1/config* from another host need a token
  (403 read_forbidden if the server has none, 401 read_unauthorized if wrong).
  X-Forwarded-For is believed only from a loopback peer. The body is parsed before the
  guards run, so malformed JSON is a 400 even without the token, as in express.
- Echoes are redacted: values under secret-looking keys, and `key: value` / `key=value`
  assignments with a secret-looking key inside strings, read back as "[REDACTED]".
- Errors are `{"error": {"code", "message"}}`; an unknown route is express's HTML 404.

Like Risoluto's config store, the effective config is re-derived after each write, and a
derivation that fails keeps the last good config while the overlay keeps the write (the
server logs "config reload rejected"). `accepts` stands for that derivation's checks.

Test hooks, not Risoluto's: `accepts` (a predicate over the new effective config),
`fail_next` (statuses answered first, e.g. `[503]`) and `requests` (method, path and
headers of every request seen).
"""

from __future__ import annotations

import copy
import http.server
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

OVERLAY = "/api/v1/config/overlay"
CONFIG = "/api/v1/config"
MAX_BODY = 1 << 20
DANGEROUS = frozenset({"__proto__", "constructor", "prototype"})
# content-sanitizer.ts REDACT_KEYS (overlay echo) and route-helpers.ts (effective config)
SECRET_KEY = re.compile(r"secret|token|key|password|credential|authorization|auth|webhook", re.I)
SECRET_CONFIG_KEY = re.compile(r"api_?key|token|secret|webhook|password|auth", re.I)
SECRET_BRANCH = re.compile(r"headers?|credentials?|auth", re.I)
FULL_SEGMENT_KEY = re.compile(r"authorization|password", re.I)
ASSIGNMENT = re.compile(r"(?<![\w-])([\w-]+)[:=]")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class RisolutoServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        token: str | None,
        config: dict[str, Any],
        overlay: dict[str, Any],
    ) -> None:
        super().__init__(address, _Handler)
        self.write_token = token
        self.config = config  # the server's own (workflow) config, under the overlay
        self.overlay = overlay
        self.live = overlay  # the overlay of the last good effective config
        self.accepts: Callable[[dict[str, Any]], bool] = lambda _: True
        self.lock = threading.Lock()
        self.requests: list[Seen] = []
        self.fail_next: list[int] = []

    def effective(self) -> dict[str, Any]:
        with self.lock:
            return merge(self.config, self.live)

    def commit(self, new: dict[str, Any]) -> bool:
        """Store `new` (the lock held); re-derive the effective config. True if it changed."""
        updated = _canonical(new) != _canonical(self.overlay)
        self.overlay = new
        if self.accepts(merge(self.config, new)):
            self.live = new
        return updated


def start(
    token: str | None = None,
    *,
    config: dict[str, Any] | None = None,
    overlay: dict[str, Any] | None = None,
    host: str = "127.0.0.1",
) -> tuple[str, RisolutoServer, Callable[[], None]]:
    """Serve on a free port of `host`; return its URL, the server and a function stopping it."""
    server = RisolutoServer((host, 0), token=token, config=config or {}, overlay=overlay or {})
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
    url = f"http://{shown}:{server.server_address[1]}"

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return url, server, stop


# -- the overlay store (overlay-helpers.ts) ---------------------------------------------------


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if key in DANGEROUS:
            continue
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _segments(dotted: str) -> list[str]:
    segments = [s.strip() for s in dotted.split(".") if s.strip()]
    if not segments:
        raise ApiError(500, "service_error", "Internal server error")
    for n, segment in enumerate(segments, 1):
        if segment in DANGEROUS:
            action = "set" if n == len(segments) else "traverse"
            message = f"Refusing to {action} dangerous key: {segment}"
            raise ApiError(400, "service_validation_error", message)
    return segments


def _set(target: dict[str, Any], segments: list[str], value: Any) -> None:
    for key in segments[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    target[segments[-1]] = value


def _remove(target: dict[str, Any], segments: list[str]) -> bool:
    head, *tail = segments
    if not tail:
        return target.pop(head, _GONE) is not _GONE
    child = target.get(head)
    if not isinstance(child, dict) or not _remove(child, tail):
        return False
    if not child:
        del target[head]
    return True


_GONE = object()


def _expand(patch: dict[str, Any]) -> dict[str, Any]:
    """A `{"patch": ...}` body: dotted keys become nested objects."""
    out: dict[str, Any] = {}
    for key, raw in patch.items():
        value = _expand(raw) if isinstance(raw, dict) else raw
        if "." not in key:
            out[key] = value
            continue
        nested: dict[str, Any] = {}
        _set(nested, _segments(key), value)
        out = merge(out, nested)
    return out


# -- redaction of echoes (content-sanitizer.ts, route-helpers.ts) -----------------------------


def redact_text(text: str) -> str:
    out, pos = [], 0
    while match := ASSIGNMENT.search(text, pos):
        key = match.group(1)
        start = match.end()
        while start < len(text) and text[start] in " \t\r\n":
            start += 1
        quote = text[start] if start < len(text) and text[start] in "\"'" else ""
        start += len(quote)
        stops = quote or (",}\"'\r\n" if FULL_SEGMENT_KEY.search(key) else ",}\"' \t\r\n")
        end = start
        while end < len(text) and text[end] not in stops:
            end += 1
        if not SECRET_KEY.search(key) or end == start:
            out.append(text[pos : match.end()])
            pos = match.end()
            continue
        out.append(text[pos:start] + "[REDACTED]")
        pos = end
    return "".join(out) + text[pos:]


def echo_overlay(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [echo_overlay(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not SECRET_KEY.search(key):
            out[key] = echo_overlay(item)
        elif isinstance(item, dict):
            out[key] = dict.fromkeys(item, "[REDACTED]")
        else:
            out[key] = "[REDACTED]" if isinstance(item, str | int | float) else "[REDACTED_OBJECT]"
    return out


def echo_config(value: Any) -> Any:
    if isinstance(value, list):
        return [echo_config(item) for item in value]
    if not isinstance(value, dict):
        return echo_overlay(value)
    return {
        key: "[REDACTED]"
        if SECRET_CONFIG_KEY.search(key) or SECRET_BRANCH.search(key)
        else echo_config(item)
        for key, item in value.items()
    }


# -- HTTP -------------------------------------------------------------------------------------


def _loopback(address: str) -> bool:
    return address == "::1" or address.startswith(("127.", "::ffff:127."))


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_POST(self) -> None:
        self._handle("POST")

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self, method: str) -> None:
        server = cast(RisolutoServer, self.server)
        path = urlsplit(self.path).path.rstrip("/") or "/"
        with server.lock:
            server.requests.append(Seen(method, path, dict(self.headers.items())))
            failure = server.fail_next.pop(0) if server.fail_next else None
        try:
            body = self._body()
            if failure is not None:
                raise ApiError(failure, "service_error", "Internal server error")
            self._guard(server, method, path)
            status, reply, allow = self._route(server, method, path, body)
        except ApiError as exc:
            status, reply, allow = exc.status, {"error": _error(exc)}, ""
        if status == 404 and reply is None:
            self._send(404, f"<pre>Cannot {method} {path}</pre>\n".encode(), "text/html")
            return
        data = b"" if status == 204 else json.dumps(reply).encode()
        self._send(status, data, "application/json; charset=utf-8", allow)

    def _body(self) -> Any:
        """What express.json() leaves in req.body."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if length > MAX_BODY:
            raise ApiError(413, "invalid_request_body", "Request body exceeds the allowed size")
        media = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media != "application/json" or not raw.strip():
            return {}
        unparsable = ApiError(400, "invalid_request_body", "Request body could not be parsed")
        if raw.lstrip()[:1] not in (b"{", b"["):  # strict mode: objects and arrays only
            raise unparsable
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise unparsable from exc

    def _guard(self, server: RisolutoServer, method: str, path: str) -> None:
        peer = self.client_address[0]
        forwarded = self.headers.get("X-Forwarded-For", "").split(",")[0].strip()
        local = _loopback(peer) and (not forwarded or _loopback(forwarded))
        supplied = self.headers.get("Authorization", "")
        supplied = supplied[len("Bearer ") :].strip() if supplied.startswith("Bearer ") else ""
        token = server.write_token
        if method in ("GET", "HEAD"):
            if local or not (path == CONFIG or path.startswith(CONFIG + "/")):
                return
            if not token:
                raise ApiError(
                    403,
                    "read_forbidden",
                    "Sensitive read routes are only allowed from loopback addresses. "
                    "Set RISOLUTO_READ_TOKEN or RISOLUTO_WRITE_TOKEN to allow remote read access.",
                )
            if supplied != token:
                raise ApiError(
                    401, "read_unauthorized", "Sensitive read routes require a valid read token."
                )
            return
        if token:
            if supplied != token:
                raise ApiError(
                    401,
                    "write_unauthorized",
                    "Mutating requests require a valid Authorization: Bearer <token> header",
                )
        elif not local:
            raise ApiError(
                403,
                "write_forbidden",
                "Mutating requests are only allowed from loopback addresses. "
                "Set RISOLUTO_WRITE_TOKEN to allow remote write access.",
            )

    def _route(
        self, server: RisolutoServer, method: str, path: str, body: Any
    ) -> tuple[int, Any, str]:
        if path == CONFIG:
            if method != "GET":
                return _not_allowed("GET")
            return 200, echo_config(server.effective()), ""
        if path == OVERLAY:
            if method == "GET":
                with server.lock:
                    return 200, {"overlay": echo_overlay(server.overlay)}, ""
            if method != "PUT":
                return _not_allowed("GET, PUT")
            if not isinstance(body, dict):
                raise ApiError(
                    400, "invalid_overlay_payload", "overlay payload must be a JSON object"
                )
            patch = _expand(body["patch"]) if isinstance(body.get("patch"), dict) else body
            with server.lock:
                updated = server.commit(merge(server.overlay, patch))
                return 200, {"updated": updated, "overlay": echo_overlay(server.overlay)}, ""
        dotted = unquote(path.removeprefix(OVERLAY + "/"))
        if not path.startswith(OVERLAY + "/") or "/" in dotted:
            return 404, None, ""
        if method not in ("PATCH", "DELETE"):
            return _not_allowed("PATCH, DELETE")
        if not dotted.strip():
            raise ApiError(400, "invalid_overlay_path", "overlay path must not be empty")
        with server.lock:
            new = copy.deepcopy(server.overlay)
            if method == "DELETE":
                if not _remove(new, _segments(dotted)):
                    raise ApiError(404, "overlay_path_not_found", "overlay path not found")
                server.commit(new)
                return 204, None, ""
            if not isinstance(body, dict) or "value" not in body:
                raise ApiError(
                    400, "invalid_overlay_payload", "PATCH body must contain a value field"
                )
            _set(new, _segments(dotted), body["value"])
            updated = server.commit(new)
            return 200, {"updated": updated, "overlay": echo_overlay(new)}, ""

    def _send(self, status: int, data: bytes, media: str, allow: str = "") -> None:
        self.send_response(status)
        if allow:
            self.send_header("Allow", allow)
        if status != 204:
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _not_allowed(allow: str) -> tuple[int, Any, str]:
    return 405, {"error": {"code": "method_not_allowed", "message": "Method Not Allowed"}}, allow


def _error(exc: ApiError) -> dict[str, str]:
    return {"code": exc.code, "message": exc.message}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
