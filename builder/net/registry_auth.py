"""Who we are to a registry: Docker's stored credentials, and answering its auth challenges.

Credentials come from the Docker CLI's config, `$DOCKER_CONFIG/config.json` or else
`~/.docker/config.json`: the base64 `user:password` that `docker login` writes to
`auths.<host>.auth`. Credential helpers (`credsStore`, `credHelpers`) are not run, since that
means executing `docker-credential-*` programs whose prompts and keychains a build must not
depend on; the unauthorized error says so when the config names one.

`Auth` answers the registry's 401 challenge. `Basic` sends the credentials. `Bearer` fetches
a token from the challenge's realm (with the credentials when there are some, and only over
https or loopback) for the scope the call needs, and caches it per scope for the life of the
`Auth`; an expired token meets a 401 and is fetched once more. No message shows a credential.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import os
import re
import threading
import urllib.error
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from builder.core.errors import RegistryError
from builder.net import transport
from builder.net.transport import Transient

_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^",\s]*))')
_ANY_SCOPE = ""  # the cache key of Basic credentials, which serve every scope
_DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


class Auth:
    """The credentials for one registry host and the tokens got with them (thread-safe)."""

    def __init__(self, host: str, config: Path | None, policy: transport.Retry) -> None:
        self.host, self.policy = host, policy
        self.config = config or _default_config()
        self._basic, self._helper = _credentials(host, self.config)
        self._auth: dict[str, str] = {}  # scope -> Authorization header value
        self._lock = threading.Lock()

    def cached(self, scope: str) -> str | None:
        """The Authorization header value to send for `scope`, if one is known."""
        with self._lock:
            return self._auth.get(scope) or self._auth.get(_ANY_SCOPE)

    def answer(self, challenge: str, scope: str, sent: str | None) -> None:
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
                raise self.unauthorized()

    def unauthorized(self) -> RegistryError:
        if self._basic is None:
            have = f"there are no credentials for it in {self.config}"
            if self._helper:
                have += " (a credential helper is configured there; this tool does not run it)"
        else:
            have = f"it refused the ones in {self.config}"
        return RegistryError(
            f"unauthorized: registry {self.host} needs credentials and {have}. Run "
            f"`docker login {self.host}`, then run this command again."
        )

    def _token(self, params: dict[str, str], scopes: list[str]) -> str:
        """A token from the challenge's realm (the registry's token server)."""
        realm = params["realm"]
        query = [("service", params["service"])] if "service" in params else []
        query += [("scope", s) for s in scopes if s]
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        parts = urlsplit(url)
        safe = parts.scheme == "https" or transport.is_loopback(parts.netloc)
        secret = {"Authorization": self._basic} if self._basic and safe else {}
        request = transport.request(url, secret=secret)
        try:
            with transport.opener(url).open(request, timeout=self.policy.timeout()) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                if self.policy.transient(exc.code):
                    reason = f"token server {realm}: HTTP {exc.code} {exc.reason}"
                    raise Transient(reason, answered=True) from None
                if exc.code in (401, 403):
                    raise self.unauthorized() from None
                msg = (
                    f"registry {self.host}: its token server {realm} answered HTTP {exc.code} "
                    f"({error_text(exc.read(65536))[0]}). Check the registry's auth setup."
                )
                raise RegistryError(msg) from None
        except (OSError, http.client.HTTPException) as exc:
            reason = f"token server {realm}: {transport.reason(exc)}"
            raise Transient(reason, answered=False) from exc
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


def error_text(body: bytes) -> tuple[str, list[str]]:
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
