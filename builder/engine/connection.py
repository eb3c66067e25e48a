"""The connection to a Docker daemon, and its refusals translated into our errors.

`Connection` connects to the engine the Docker CLI would pick (DOCKER_HOST, a context, TLS,
ssh://) on first need, or asks a local daemon's socket straight (`dockersock`), and names the
engine as its daemon does. The parts of `docker.DockerEngine` build on it.

Whatever the engine refuses (a container that cannot start, an option it does not know, a 500
from its API, an image it lacks) leaves here as a BuilderError naming the step (`in_step()`),
the engine (name and version, as the daemon reports them) and its own message: exit 5, or 9
when the engine stopped answering. No caller ever sees the SDK's exceptions.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from builder.core import space
from builder.core.errors import BuilderError, EngineRefusedError, EngineUnavailableError
from builder.engine import dockersock, endpoint
from builder.engine.dockersock import local_socket
from builder.engine.interface import STEP

_FIRST_API = "1.24"  # the oldest Engine API the SDK speaks: only until the engine's is known
START_HINT = (
    "Start it (as root: `dockerd >/var/log/dockerd.log 2>&1 &`, or `systemctl start docker`) "
    "or point DOCKER_HOST at a running engine; `sandbox doctor` checks the setup"
)


class Connection:
    """A daemon reached through the SDK or its local socket (`docker.DockerEngine` says
    how), the shared state of the parts built on it, and what each of them asks of it:
    `describe`, `storage`, `ping`, `runtimes`, `remove_container` (every part cleans up)."""

    def __init__(self, *, sdk: Any = None) -> None:
        self._sdk: Any = sdk
        self._errors: Any = None
        self._described: str | None = None
        self._storage: str | None = None
        self._connecting = threading.Lock()
        self._ids: dict[str, str] = {}  # config digest -> the engine's image ID, where they differ
        self._visible: dict[tuple[object, ...], bool] = {}  # what `_sees` proved, by filesystem
        self._probing = threading.Lock()
        self._scope: str | None = None  # the daemon's ID and this boot's (`_sees`)
        if sdk is not None:
            import docker.errors

            self._socket = None
            self._errors = docker.errors
            return
        self._socket = local_socket()
        if self._socket is None:
            self._connect()
        else:
            self._request("GET", "/_ping")  # unreachable: exit 9 now, as with the SDK

    @property
    def _client(self) -> Any:
        with self._connecting:
            if self._sdk is None:
                self._connect()
        return self._sdk

    def _connect(self) -> None:
        import docker
        from docker.errors import DockerException

        where = endpoint.current()
        try:
            self._sdk = _client_for(where)
            self._sdk.ping()
        except DockerException as exc:
            hint = START_HINT
            if where.scheme == "ssh":
                hint = (
                    f"Check that `{_ssh_command(where.host)} docker version` works here: the "
                    "tool runs `docker system dial-stdio` there, as the Docker CLI does"
                )
            elif "SSL" in str(exc) or "HTTPS" in str(exc):
                hint = (
                    "Check TLS as the Docker CLI reads it: DOCKER_TLS_VERIFY=1 and "
                    "DOCKER_CERT_PATH holding the engine's ca.pem and a cert.pem/key.pem it "
                    "accepts (`docker info` with the same variables tells)"
                )
            msg = f"Docker Engine {_where()} unreachable ({short(exc)}). {hint}"
            raise EngineUnavailableError(msg) from None
        self._errors = docker.errors

    def _request(self, method: str, path: str) -> tuple[int, bytes]:
        """One request over the local socket: (status, body)."""
        assert self._socket is not None
        try:
            return dockersock.request(self._socket, method, path)
        except OSError as exc:
            msg = f"Docker Engine unreachable ({self._socket}: {short(exc)}). {START_HINT}"
            raise EngineUnavailableError(msg) from None

    @contextlib.contextmanager
    def _asking(self, what: str) -> Iterator[None]:
        """Turn what the SDK raises while the engine does `what` into a BuilderError naming
        the step, the engine and the engine's own message."""
        try:
            yield
        except BuilderError:
            raise
        except Exception as exc:
            error = self._refusal(what, exc)
            if error is None:
                raise  # not the engine's answer: a bug, with its traceback
            raise error from None

    def _refusal(self, what: str, exc: Exception) -> BuilderError | None:
        from docker.errors import APIError, DockerException
        from requests.exceptions import ConnectionError as Unanswered
        from requests.exceptions import RequestException

        where = f"{STEP.get()}: " if STEP.get() else ""
        if isinstance(exc, Unanswered):
            msg = f"{where}the engine stopped answering while {what} ({short(exc)}). {START_HINT}"
            return EngineUnavailableError(msg)
        if isinstance(exc, APIError):
            status = exc.response.status_code if exc.response is not None else "?"
            said = str(exc.explanation or "").strip() or short(exc)
            if space.says_full(said):
                return space.engine_full(what=f"{where}{what}", storage=self.storage(), said=said)
            msg = (
                f"{where}{self.describe()} refused {what} (HTTP {status}): {said}. "
                f"{_advice(status)}"
            )
            return EngineRefusedError(msg, status=status if isinstance(status, int) else None)
        if isinstance(exc, DockerException | RequestException):
            msg = f"{where}{self.describe()} failed {what}: {short(exc)}. {_advice(None)}"
            return EngineRefusedError(msg)
        return None

    def describe(self) -> str:
        """The engine as its daemon names itself: `Docker Engine 20.10.24`, `Podman 4.3.1`,
        and where it is when that is not the default socket."""
        if self._described is None:
            try:
                version: dict[str, Any] = self._client.version()
            except Exception:  # naming the engine in an error must not raise another
                version = {}
            parts = version.get("Components") or []
            name = "Docker Engine"
            if any("podman" in str(c.get("Name", "")).lower() for c in parts):
                name = "Podman"
            number = version.get("Version")
            where = endpoint.current()
            host = where.host if where.source != "default" else None
            self._described = " ".join(
                [name, *([str(number)] if number else []), *([f"at {host}"] if host else [])]
            )
        return self._described

    def ping(self) -> str:
        with self._asking("answering a version request"):
            version: dict[str, Any] = self._client.version()
        return str(version.get("Version", "?"))

    def storage(self) -> str:
        """The engine's own disk, as a message names it: its data root."""
        if self._storage is None:
            try:
                root = str(self._client.info().get("DockerRootDir") or "")
            except Exception:  # naming the engine in an error must not raise another
                root = ""
            held = f" (its data root {root})" if root else ""
            self._storage = f"the storage of {self.describe()}{held}"
        return self._storage

    def runtimes(self) -> list[str]:
        """The OCI runtimes the daemon offers (runc, and runsc when gVisor is installed)."""
        with self._asking("describing itself (docker info)"):
            return sorted(self._client.info().get("Runtimes") or {})

    def remove_container(self, container: str) -> None:
        api = self._client.api  # connects first, so the SDK's error classes are known
        what = f"removing container {container[:12]}"
        with self._asking(what), contextlib.suppress(self._errors.NotFound):
            api.remove_container(container, force=True)


def _advice(status: object) -> str:
    """What to do about a refusal with HTTP `status`."""
    if status == 404:
        return "It lacks what was named: run `sandbox build` again (it loads what is missing)"
    if isinstance(status, int) and status >= 500:
        return (
            "The engine's own log says more; if it is not Docker Engine 20.10 or later, see "
            "docs/engines.md for what works there"
        )
    return "Fix what the engine names; docs/engines.md says what works where"


def _where() -> str:
    """The engine as the Docker CLI would pick it (DOCKER_HOST, a context, TLS settings)."""
    try:
        return endpoint.current().describe()
    except EngineUnavailableError:
        return "(its Docker context is unreadable)"


def _client_for(where: endpoint.Endpoint) -> Any:
    """A Docker SDK client for `where`. ssh:// shells out to the `ssh` program, as the Docker
    CLI does (so ~/.ssh/config, agents and known_hosts apply; the remote end needs the
    `docker` CLI for `docker system dial-stdio`)."""
    import docker
    from docker.tls import TLSConfig

    ssh = where.scheme == "ssh"
    if where.tls_dir is None:
        if where.source == "DOCKER_HOST":
            return docker.from_env(timeout=600, use_ssh_client=ssh)
        return docker.DockerClient(base_url=where.host, timeout=600, use_ssh_client=ssh)
    pem = {name: where.tls_dir / f"{name}.pem" for name in ("ca", "cert", "key")}
    tls = TLSConfig(
        client_cert=(str(pem["cert"]), str(pem["key"])) if pem["cert"].is_file() else None,
        ca_cert=str(pem["ca"]) if where.verify and pem["ca"].is_file() else None,
        verify=where.verify,
    )
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (a proxy's CA, for the internet)
    # override the engine's ca.pem; the Docker CLI trusts that CA alone, and so does this
    # client: no request before the environment is out of it, then the API version is asked.
    client = docker.DockerClient(
        base_url=where.host,
        tls=tls,
        timeout=600,
        version=_FIRST_API,
    )
    client.api.trust_env = False
    client.api._version = client.api._retrieve_server_version()
    return client


def _ssh_command(host: str) -> str:
    """`ssh [-p PORT] [USER@]HOST` for an ssh:// engine address."""
    parts = urlsplit(host)
    port = f"-p {parts.port} " if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"ssh {port}{user}{parts.hostname}"


def short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
