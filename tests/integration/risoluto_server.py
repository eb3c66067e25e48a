"""A stand-in for Risoluto's config API that behaves as the real server does (DESIGN.md §7).

Modelled on Risoluto's source (OmerFarukOruc/risoluto, read at f7ed42e) and checked by hand
against that server run on loopback in setup mode:

- src/http/routes/config.ts: `PUT /api/v1/config/overlay` with a JSON object deep-merges it
  into the stored overlay (config/overlay-helpers.ts: objects merge, lists and scalars
  replace, null is stored) and answers `{"updated", "overlay"}`; a body `{"patch": {...}}` is
  unwrapped, its dotted keys expanded. Anything but an object (an array, no body at all) is
  400 invalid_overlay_payload. `GET /api/v1/config/overlay` -> `{"overlay": ...}`. `PATCH
  /api/v1/config/overlay/<dotted.path>` with `{"value": x}`; `DELETE` -> 204, or 404
  overlay_path_not_found; both prune objects left empty (removeOverlayPathValue).
- src/http/server.ts: `express.json({limit: "1mb"})` parses a body only with `Content-Type:
  application/json`; without it (express 5) the body is undefined, so a PUT is a 400
  invalid_overlay_payload. The guards run after it, so a malformed body fails first.
- src/http/service-errors.ts: what a store or the parser throws becomes 500 service_error
  with its message (malformed JSON, a top-level scalar, over 1 MiB), a TypeError 400
  service_validation_error (a dangerous key such as `__proto__`).
- src/http/write-guard.ts, read-guard.ts: with a write token every write needs
  `Authorization: Bearer <token>`, from any client (401 write_unauthorized when missing or
  wrong); without one only loopback clients may write (403 write_forbidden). Reads of
  /api/v1/config* from another host need a token (403 read_forbidden if the server has none,
  401 read_unauthorized if wrong). X-Forwarded-For is believed only from a loopback peer.
- src/http/routes/extensions.ts, route-helpers.ts, core/content-sanitizer.ts: only `GET
  /api/v1/config` (the effective config: the server's own config with the overlay
  deep-merged on top, as raw as stored) is redacted: values under secret-looking keys, and
  in strings `api_key`, `password`, `secret`, `token`... followed by `:` or `=` (its other
  patterns, bearer and vendor tokens, are not modelled). The overlay echoes are not redacted.
- src/http/routes.ts: an unknown /api/ path is a JSON 404 not_found; any other path serves
  the web UI's page (200, HTML).
- src/config/section-builders.ts, coercion.ts: `in_effect()` is the `codex.sandbox` config
  Risoluto derives from that map and spawns agents with (src/docker/spawn.ts): each key
  coerced to its type, a value of another type replaced by the default (defaults.ts).

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
# route-helpers.ts isSensitiveKey / isSensitiveBranch; content-sanitizer.ts GENERIC_SECRET_KEYS
SECRET_CONFIG_KEY = re.compile(r"api_?key|token|secret|webhook|password|auth", re.I)
SECRET_BRANCH = re.compile(r"headers?|credentials?|auth", re.I)
GENERIC_SECRET_KEYS = (
    "api_key",
    "api-key",
    "apikey",
    "authorization",
    "password",
    "secret",
    "token",
)


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

    def in_effect(self) -> dict[str, Any]:
        """The `codex.sandbox` settings agents are spawned with, by dotted key."""
        codex = self.effective().get("codex")
        sandbox = codex.get("sandbox") if isinstance(codex, dict) else None
        found = {}
        for dotted, (kind, default) in SANDBOX_DEFAULTS.items():
            value: Any = sandbox if isinstance(sandbox, dict) else {}
            for key in dotted.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            found[dotted] = _coerce(value, kind, default)
        return found

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


# -- redaction of the effective config (route-helpers.ts, content-sanitizer.ts) --------------


def redact_text(text: str) -> str:
    """redactGenericSecretAssignments: `<key>:` or `<key>=` anywhere, its value redacted."""
    lower, out, pos = text.lower(), [], 0
    while pos < len(text):
        key = next((k for k in GENERIC_SECRET_KEYS if lower.startswith(k, pos)), None)
        after = pos + len(key) if key else pos
        if key is None or text[after : after + 1] not in (":", "="):
            out.append(text[pos])
            pos += 1
            continue
        start = after + 1
        start += text[start : start + 1] in (" ", "\t", "\n", "\r")
        start += text[start : start + 1] in ('"', "'")
        end = start
        while end < len(text) and text[end] not in "\"',} \t\n\r":
            end += 1
        if end == start:
            out.append(text[pos])
            pos += 1
            continue
        out.append(text[pos:start] + "[REDACTED]")
        pos = end
    return "".join(out)


def echo_config(value: Any, path: tuple[str, ...] = ()) -> Any:
    """sanitizeConfigValue: what `GET /api/v1/config` shows of the effective config."""
    hidden = any(SECRET_CONFIG_KEY.search(k) or SECRET_BRANCH.search(k) for k in path)
    if isinstance(value, list):
        return [echo_config(item, (*path, str(n))) for n, item in enumerate(value)]
    if not isinstance(value, dict):
        if hidden:
            return "[REDACTED]"
        return redact_text(value) if isinstance(value, str) else value
    return {
        key: "[REDACTED]"
        if SECRET_CONFIG_KEY.search(key) or SECRET_BRANCH.search(key) or hidden
        else echo_config(item, (*path, key))
        for key, item in value.items()
    }


# -- the sandbox config in effect (section-builders.ts deriveSandboxConfig, defaults.ts) -----

_STRING, _BOOL, _NUMBER, _STRINGS = str, bool, float, list
SANDBOX_DEFAULTS: dict[str, tuple[type, Any]] = {
    "image": (_STRING, "risoluto-codex:latest"),
    "network": (_STRING, ""),
    "security.no_new_privileges": (_BOOL, True),
    "security.drop_capabilities": (_BOOL, True),
    "security.gvisor": (_BOOL, False),
    "security.seccomp_profile": (_STRING, ""),
    "resources.memory": (_STRING, "4g"),
    "resources.memory_reservation": (_STRING, "1g"),
    "resources.memory_swap": (_STRING, "4g"),
    "resources.cpus": (_STRING, "2.0"),
    "resources.tmpfs_size": (_STRING, "512m"),
    "extra_mounts": (_STRINGS, []),
    "env_passthrough": (_STRINGS, []),
    "logs.driver": (_STRING, "json-file"),
    "logs.max_size": (_STRING, "50m"),
    "logs.max_file": (_NUMBER, 3),
    "egress_allowlist": (_STRINGS, []),
}


def _coerce(value: Any, kind: type, default: Any) -> Any:
    if kind is _BOOL:
        return value if isinstance(value, bool) else default  # asBoolean
    if kind is _NUMBER:  # asNumber
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return value if number and value == value and abs(value) != float("inf") else default
    if kind is _STRINGS:  # asLooseStringArray
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
    return value if isinstance(value, str) else default  # asString


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
            if path.startswith("/api/"):
                reply = {"error": {"code": "not_found", "message": "Not found"}}
            else:  # the web UI's page
                self._send(200, b"<!doctype html><title>Risoluto</title>\n", "text/html")
                return
        data = b"" if status == 204 else json.dumps(reply).encode()
        self._send(status, data, "application/json; charset=utf-8", allow)

    def _body(self) -> Any:
        """What express.json() leaves in req.body: None stands for undefined."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        media = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media != "application/json" or not raw:
            return None
        if length > MAX_BODY:
            raise ApiError(500, "service_error", "request entity too large")
        if raw.lstrip()[:1] not in (b"{", b"["):  # strict mode: objects and arrays only
            raise ApiError(500, "service_error", f"Unexpected token in JSON: {raw[:20]!r}")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ApiError(500, "service_error", str(exc)) from exc

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
                    return 200, {"overlay": server.overlay}, ""
            if method != "PUT":
                return _not_allowed("GET, PUT")
            if not isinstance(body, dict):
                raise ApiError(
                    400, "invalid_overlay_payload", "overlay payload must be a JSON object"
                )
            patch = _expand(body["patch"]) if isinstance(body.get("patch"), dict) else body
            with server.lock:
                updated = server.commit(merge(server.overlay, patch))
                return 200, {"updated": updated, "overlay": server.overlay}, ""
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
            return 200, {"updated": updated, "overlay": new}, ""

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
