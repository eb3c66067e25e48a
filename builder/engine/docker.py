"""The Docker Engine, behind one small interface (the only module importing `docker`).

`Engine` is the protocol the rest of the tool uses; `DockerEngine` implements it with the Docker
SDK. Unit tests substitute a recording fake. The SDK is imported lazily, so commands that never
touch Docker (`graph`, `status`, a `lock --check`) stay fast.

Whatever the engine refuses (a container that cannot start, an option it does not know, a 500
from its API, an image it lacks) leaves here as a BuilderError naming the step (`in_step()`),
the engine (name and version, as the daemon reports them) and its own message: exit 5, or 9
when the engine stopped answering. No caller ever sees the SDK's exceptions.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import secrets
import shutil
import stat
import tarfile
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

from builder.core import limits, space
from builder.core.atomic import write_atomic
from builder.core.errors import (
    BuilderError,
    BuildError,
    CheckError,
    EngineRefusedError,
    EngineUnavailableError,
    RegistryError,
    ResolutionError,
)
from builder.engine import dockersock, endpoint, transfer
from builder.engine.dockersock import local_socket

_FIRST_API = "1.24"  # the oldest Engine API the SDK speaks: only until the engine's is known
_PROBE = "/sandbox-builder-probe"  # where a probe container shows what it was given
START_HINT = (
    "Start it (as root: `dockerd >/var/log/dockerd.log 2>&1 &`, or `systemctl start docker`) "
    "or point DOCKER_HOST at a running engine; `sandbox doctor` checks the setup"
)


# The step the engine is working for, per thread (the executor builds nodes in parallel).
_STEP: ContextVar[str] = ContextVar("sandbox_builder_step", default="")


@contextlib.contextmanager
def in_step(name: str) -> Iterator[None]:
    """Name the step (`runtime.node`, `lock system`, `check`) that the engine's refusals
    inside the block belong to."""
    token = _STEP.set(name)
    try:
        yield
    finally:
        _STEP.reset(token)


@dataclass(frozen=True, kw_only=True)
class Mount:
    """A file or folder of ours at `target` in a container.

    Where the engine sees our filesystem it is a bind mount. Where it does not, the engine
    copies it in before the step starts and, when writable, back out after it ends; a
    download cache (`cache` names it) is an engine-owned volume of that name instead.
    """

    source: str
    target: str
    read_only: bool = True
    cache: str = ""
    setting: str = ""  # what moves `source` elsewhere, named when its disk fills


@dataclass(frozen=True, kw_only=True)
class Confinement:
    """How a checked container runs, in `docker run` terms (spawn.py fills it in as the
    orchestrator would). `home`: a fresh named volume mounted there, first chowned to `user`
    by a helper container of the same image running as root; `network` None is Docker's
    default bridge."""

    user: str
    workdir: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    home: str | None = None
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    cap_drop: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    runtime: str | None = None
    network: str | None = None
    extra_hosts: Mapping[str, str] = field(default_factory=dict)
    memory: str | None = None
    memory_reservation: str | None = None
    memory_swap: str | None = None
    cpus: float | None = None


@dataclass(frozen=True, kw_only=True)
class RunResult:
    container: str
    exit_code: int
    stopped_after: float | None = None  # seconds, when the step limit stopped it
    # Where a failed step's writes went, to tell which disk filled: each folder of ours it
    # wrote straight into (target -> our folder, the setting moving it), and the engine's
    # storage, where the container's own files live.
    bound: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    storage: str = ""


class Engine(Protocol):
    def ping(self) -> str: ...
    def image_id(self, ref: str) -> str | None: ...
    def find_image(
        self, config_digest: str, *, tag: str, diff_ids: list[str], labels: Mapping[str, str]
    ) -> str | None: ...
    def image_env(self, ref: str) -> list[str]: ...
    def registry_digest(self, ref: str, platform: str) -> str: ...
    def pull(self, ref: str, platform: str) -> str: ...
    def save(self, ref: str, dest: Path) -> None: ...
    def load(self, archive: Iterable[bytes]) -> None: ...
    def tag(self, image: str, repository: str, tag: str) -> None: ...
    def run(
        self,
        *,
        image: str,
        script: str,
        log: Path,
        env: Mapping[str, str],
        mounts: list[Mount],
        network: bool,
    ) -> RunResult: ...
    def commit(self, container: str) -> str: ...
    def changes(self, container: str) -> list[str]: ...
    def upper_dir(self, container: str) -> Path | None: ...
    def layer_stacks(
        self, label: str, known: Mapping[str, tuple[str, ...]]
    ) -> dict[str, tuple[str, ...]]: ...
    def inspect(self, ref: str) -> dict[str, Any]: ...
    def runtimes(self) -> list[str]: ...
    def run_confined(
        self, *, image: str, script: str, confinement: Confinement, timeout: float
    ) -> tuple[int, str]: ...
    def remove_container(self, container: str) -> None: ...
    def remove_image(self, image: str) -> None: ...
    def images(self, label: str) -> list[ImageInfo]: ...
    def containers(self, label: str) -> list[str]: ...


@dataclass(frozen=True, kw_only=True)
class ImageInfo:
    id: str
    tags: tuple[str, ...]
    size: int


class DockerEngine:
    """`Engine` on a real daemon, reached through DOCKER_HOST or the default socket.

    The Docker SDK (with requests, ~0.15 s to import) connects on first need. The two
    questions a no-op build asks, whether the engine has an image and tagging it, go straight
    to the daemon's unix socket when it is local, so `sandbox build` with nothing to do never
    imports the SDK. `sdk` is a client object to use instead of connecting (tests).

    Images are named here by their config digest, the identity the lock and the team cache
    use. The containerd image store (Docker 28/29, Docker Desktop) names them by manifest
    digest instead: `find_image` learns that name, and every method taking an image turns
    our name into the engine's.

    Whether the daemon sees our files is proved, never guessed: a bind mount of a marker
    file of ours must show that file (`_sees`). Where it does not, mounts travel through the
    API (`Mount`) and the overlay2 upper dir is never read.
    """

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
            msg = f"Docker Engine {_where()} unreachable ({_short(exc)}). {hint}"
            raise EngineUnavailableError(msg) from None
        self._errors = docker.errors

    def _request(self, method: str, path: str) -> tuple[int, bytes]:
        """One request over the local socket: (status, body)."""
        assert self._socket is not None
        try:
            return dockersock.request(self._socket, method, path)
        except OSError as exc:
            msg = f"Docker Engine unreachable ({self._socket}: {_short(exc)}). {START_HINT}"
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

        where = f"{_STEP.get()}: " if _STEP.get() else ""
        if isinstance(exc, Unanswered):
            msg = f"{where}the engine stopped answering while {what} ({_short(exc)}). {START_HINT}"
            return EngineUnavailableError(msg)
        if isinstance(exc, APIError):
            status = exc.response.status_code if exc.response is not None else "?"
            said = str(exc.explanation or "").strip() or _short(exc)
            if space.says_full(said):
                return space.engine_full(what=f"{where}{what}", storage=self.storage(), said=said)
            msg = (
                f"{where}{self.describe()} refused {what} (HTTP {status}): {said}. "
                f"{_advice(status)}"
            )
            return EngineRefusedError(msg)
        if isinstance(exc, DockerException | RequestException):
            msg = f"{where}{self.describe()} failed {what}: {_short(exc)}. {_advice(None)}"
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

    def image_id(self, ref: str) -> str | None:
        found = self._image_json(self._ids.get(ref, ref))
        return None if found is None else str(found["Id"])

    def _image_json(self, ref: str) -> dict[str, Any] | None:
        if self._socket is not None:
            status, body = self._request("GET", f"/images/{quote(ref, safe='')}/json")
            if status in (400, 404):
                return None
            if status == 200:
                found: dict[str, Any] = json.loads(body)
                return found
        with self._asking(f"inspecting image {ref}"):
            try:
                info: dict[str, Any] = self._client.api.inspect_image(ref)
            except self._errors.ImageNotFound:
                return None
            except self._errors.APIError as exc:
                if exc.status_code in (400, 404):
                    return None
                raise
        return info

    def find_image(
        self, config_digest: str, *, tag: str, diff_ids: list[str], labels: Mapping[str, str]
    ) -> str | None:
        """The engine's ID of the image whose config has digest `config_digest`, or None.

        Docker's classic store knows an image by that digest. The containerd store cannot be
        asked by config: there the image tagged `tag` is it when its layers and labels are
        the config's (our labels name the lock and every node key); its ID is remembered.
        """
        found = self.image_id(config_digest)
        if found is not None:
            return found
        info = self._image_json(tag)
        if info is None:
            return None
        layers = list((info.get("RootFS") or {}).get("Layers") or [])
        theirs = (info.get("Config") or {}).get("Labels") or {}
        if layers != diff_ids or any(theirs.get(k) != v for k, v in labels.items()):
            return None
        self._ids[config_digest] = str(info["Id"])
        return self._ids[config_digest]

    def tag(self, image: str, repository: str, tag: str) -> None:
        image = self._ids.get(image, image)
        if self._socket is not None:
            query = urlencode({"repo": repository, "tag": tag, "force": "1"})
            status, _ = self._request("POST", f"/images/{quote(image, safe='')}/tag?{query}")
            if status in (200, 201):
                return
        with self._asking(f"tagging {image} as {repository}:{tag}"):
            self._client.api.tag(image, repository, tag=tag, force=True)

    def image_env(self, ref: str) -> list[str]:
        with self._asking(f"inspecting image {ref}"):
            config = self._client.api.inspect_image(self._ids.get(ref, ref)).get("Config") or {}
        return list(config.get("Env") or [])

    def registry_digest(self, ref: str, platform: str) -> str:
        client = self._client  # connects first, so the SDK's error classes are known
        try:
            data = client.images.get_registry_data(ref)
        except self._errors.DockerException as exc:
            msg = f"cannot read {ref} from its registry ({_short(exc)}). Check the name and tag"
            raise ResolutionError(msg) from None
        return str(data.id)

    def pull(self, ref: str, platform: str) -> str:
        repo, _, digest = ref.partition("@")
        api = self._client.api
        try:
            api.pull(repo, tag=digest or None, platform=platform)
        except self._errors.DockerException as exc:
            msg = f"cannot pull {ref} ({_short(exc)}). Is the registry up? Re-lock if it moved"
            raise RegistryError(msg) from None
        found = self.image_id(ref)
        if found is None:
            msg = f"pulled {ref} but the engine does not list it"
            raise RegistryError(msg)
        return found

    def save(self, ref: str, dest: Path) -> None:
        with self._asking(f"saving image {ref} (docker save)"), dest.open("wb") as out:
            for chunk in self._client.api.get_image(self._ids.get(ref, ref)):
                out.write(chunk)

    def load(self, archive: Iterable[bytes]) -> None:
        """`docker load` the archive streamed in `archive`; the engine's refusal is a
        BuildError saying why."""
        with self._asking("loading an image (docker load)"):
            for message in self._client.api.load_image(archive):
                if isinstance(message, dict) and message.get("error"):
                    said = str(message["error"])
                    if space.says_full(said):
                        what = "loading an image (docker load)"
                        raise space.engine_full(what=what, storage=self.storage(), said=said)
                    msg = f"{self.describe()} refused to load the image: {said}"
                    raise EngineRefusedError(msg)

    def run(
        self,
        *,
        image: str,
        script: str,
        log: Path,
        env: Mapping[str, str],
        mounts: list[Mount],
        network: bool,
    ) -> RunResult:
        """Run `script` with /bin/sh as root in a new container; keep it for `commit`.
        What it wrote into a writable mount of ours is there when this returns.

        The image's own Entrypoint, User and HOME do not apply (a base image's may be
        anything: an orchestrator's sets HOME to its agent's, where a tool's cache would land
        outside its prefix). A container that cannot start (no /bin/sh in the image) exits
        127, as a shell does for a missing program, with the engine's reason in the log.
        The container is killed once it has run for the step limit (limits.py): a stalled
        mirror must not hold the build forever. The log is flushed as output arrives, so
        the progress heartbeat can tell a step that has gone quiet.
        """
        api = self._client.api
        image = self._ids.get(image, image)
        binds, copy_in, copy_out = self._place(image, mounts)
        with self._asking(f"creating a container of {image}"):
            host_config = api.create_host_config(
                binds=binds, network_mode="bridge" if network else "none"
            )
            container = api.create_container(
                image,
                entrypoint=["/bin/sh", "-ec"],
                command=[script],
                environment={"HOME": "/root", **env},
                user="0:0",
                host_config=host_config,
                labels={"sandbox-builder": "step"},
            )
        cid = str(container["Id"])
        limit = limits.step_timeout()
        stopped = threading.Event()

        def stop() -> None:
            stopped.set()
            with contextlib.suppress(Exception):  # gone already, or the engine went away
                api.kill(cid)

        timer = threading.Timer(limit, stop)
        timer.daemon = True
        try:
            if copy_in:
                with self._asking(f"copying the step's inputs into a container of {image}"):
                    self._put_files(cid, copy_in)
            log.parent.mkdir(parents=True, exist_ok=True)
            with (
                space.room_for(log, what=f"writing the log of a step in {image}"),
                self._asking(f"running a container of {image}"),
                log.open("wb") as out,
            ):
                # Attached before it starts, as `docker run` does: what the step prints
                # reaches us even when the engine cannot keep its log (its disk full).
                output = api.attach(cid, stdout=True, stderr=True, stream=True, logs=False)
                try:
                    try:
                        api.start(cid)
                    except self._errors.APIError as exc:
                        said = str(exc.explanation or "").strip() or _short(exc)
                        out.write(
                            f"the container did not start: {self.describe()}: {said}\n".encode()
                        )
                        return RunResult(container=cid, exit_code=127)
                    timer.start()
                    for chunk in _arriving(output):
                        out.write(chunk)
                        out.flush()
                finally:
                    timer.cancel()
                    with contextlib.suppress(Exception):  # closed already by the engine
                        output.close()
                code = int(api.wait(cid)["StatusCode"])
            for source, target in copy_out:
                with self._asking(f"copying {target} out of a container of {image}"):
                    stream, _ = api.get_archive(cid, target)
                    transfer.unpack_into(stream, Path(source), what=f"copying {target} out")
        except BaseException:
            with contextlib.suppress(BuilderError):  # the first failure is the one to tell
                self.remove_container(cid)
            raise
        bound = {
            m.target: (m.source, m.setting or space.CACHE_SETTING)
            for m in mounts
            if not m.read_only and binds.get(m.source, {}).get("bind") == m.target
        }
        return RunResult(
            container=cid,
            exit_code=code,
            stopped_after=limit if stopped.is_set() else None,
            bound=bound,
            storage=self.storage() if code else "",
        )

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

    def _put_files(self, container: str, items: list[tuple[str, str]]) -> None:
        """Copy (source, target) pairs into a created container, owners kept as ours
        (`copyUIDGID`: a folder given to the agent's uid stays its, as a bind mount shows it;
        the SDK's put_archive cannot ask for that)."""
        api = self._client.api
        url = api._url("/containers/{0}/archive", container)
        params = {"path": "/", "copyUIDGID": "1"}
        api._raise_for_status(api._put(url, params=params, data=transfer.pack(items)))

    def _place(
        self, image: str, mounts: list[Mount]
    ) -> tuple[dict[str, dict[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
        """How each mount reaches a container of `image`: (binds, what to copy in, what to
        copy back out), as (source, target) pairs."""
        binds: dict[str, dict[str, str]] = {}
        copy_in, copy_out = [], []
        sees = self._sees(image, mounts)
        for m in mounts:
            if sees[m.source] or not Path(m.source).exists():  # nothing here to copy
                binds[m.source] = {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
            elif m.cache:
                volume = "sandbox-builder-cache-" + re.sub(r"[^A-Za-z0-9_.-]", "-", m.cache)
                binds[volume] = {"bind": m.target, "mode": "rw"}
            else:
                copy_in.append((m.source, m.target))
                if not m.read_only:
                    copy_out.append((m.source, m.target))
        return binds, copy_in, copy_out

    def _sees(self, image: str, mounts: list[Mount]) -> dict[str, bool]:
        """Source -> whether the daemon sees it as we do, proved once per filesystem (a
        file: once per version of it) by a probe container of `image`.

        What a probe proved is remembered in the user's cache (PROBES_FILE) under the
        daemon's ID and this boot, so a later build asks the daemon one question (~10 ms)
        instead of probing again (a container created and removed: 0.1-0.4 s here)."""
        with self._probing:
            unknown: dict[tuple[object, ...], str] = {}
            for m in mounts:
                key = _probe_key(m.source)
                if key not in self._visible:
                    unknown.setdefault(key, m.source)
            if unknown:
                memo = self._remembered()
                for key in list(unknown):
                    if repr(key) in memo:
                        self._visible[key] = bool(memo[repr(key)])
                        del unknown[key]
            if unknown:
                seen = self._probe(image, list(unknown.values()))
                for key, source in unknown.items():
                    self._visible[key] = seen[source]
                self._remember()
            return {m.source: self._visible[_probe_key(m.source)] for m in mounts}

    def _memo_scope(self) -> str:
        if self._scope is None:
            engine = str(self._client.info().get("ID") or "")
            try:
                boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
            except OSError:
                boot = ""
            self._scope = f"{engine}/{boot}" if engine and boot else ""
        return self._scope

    def _remembered(self) -> dict[str, bool]:
        scope = self._memo_scope()
        if not scope:
            return {}
        try:
            found = json.loads(probes_file().read_bytes()).get(scope)
        except (OSError, ValueError, AttributeError):
            return {}
        return found if isinstance(found, dict) else {}

    def _remember(self) -> None:
        """Add what this process proved to what is kept for this daemon and boot (other
        daemons' results are dropped: the file stays small)."""
        scope = self._memo_scope()
        if not scope:
            return
        mine = {**self._remembered(), **{repr(k): v for k, v in self._visible.items()}}
        with contextlib.suppress(OSError):
            probes_file().parent.mkdir(parents=True, exist_ok=True)
            write_atomic(probes_file(), json.dumps({scope: mine}, sort_keys=True).encode())

    def _probe(self, image: str, sources: list[str]) -> dict[str, bool]:
        """Bind-mount each source (a folder: a marker file made in it) into one created,
        never started, container and read it back through the API: the daemon sees a source
        when the engine's copy holds our bytes. An engine that refuses the mount (no such
        path there) sees none of them, so each is then asked alone."""
        from docker.types import Mount as Bind

        api = self._client.api
        expected: dict[str, tuple[str, str, bytes]] = {}  # source -> bound, path in it, bytes
        try:
            for source in sources:
                if Path(source).is_dir():
                    folder = tempfile.mkdtemp(dir=source, prefix=".sandbox-probe-")
                    token = secrets.token_hex(16).encode()
                    Path(folder, "marker").write_bytes(token)
                    expected[source] = (folder, "/marker", token)
                else:
                    expected[source] = (source, "", Path(source).read_bytes())
            binds = [
                Bind(
                    target=f"/sandbox-builder-probe/{i}", source=bound, type="bind", read_only=True
                )
                for i, (bound, _, _) in enumerate(expected.values())
            ]
            try:
                cid = str(
                    api.create_container(
                        image,
                        command=["true"],
                        host_config=api.create_host_config(mounts=binds, network_mode="none"),
                        labels={"sandbox-builder": "step"},
                    )["Id"]
                )
            except self._errors.APIError:
                if len(sources) == 1:
                    return {sources[0]: False}
                return {s: self._probe(image, [s])[s] for s in sources}
            try:
                return {
                    source: self._file_in(cid, f"{_PROBE}/{i}{path}") == data
                    for i, (source, (_, path, data)) in enumerate(expected.items())
                }
            finally:
                self.remove_container(cid)
        except OSError:
            return dict.fromkeys(sources, False)  # cannot make the marker: copy, to be safe
        finally:
            for source, (bound, _, _) in expected.items():
                if bound != source:
                    shutil.rmtree(bound, ignore_errors=True)

    def _file_in(self, container: str, path: str) -> bytes | None:
        try:
            stream, _ = self._client.api.get_archive(container, path)
        except self._errors.APIError:
            return None
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.next()
            data = archive.extractfile(member) if member is not None and member.isreg() else None
            return None if data is None else data.read()

    def shares_storage(self) -> bool:
        """Whether a probe proved that the daemon sees a folder of ours, i.e. runs on this
        machine: only then may its overlay2 upper dirs be read here."""
        with self._probing:
            return any(v for k, v in self._visible.items() if k[0] == "dir")

    def commit(self, container: str) -> str:
        with self._asking(f"committing container {container[:12]}"):
            return str(self._client.api.commit(container)["Id"])

    def changes(self, container: str) -> list[str]:
        """The paths a container added, changed or deleted in its own filesystem (what
        `docker diff` lists; bind mounts are not part of it).

        Read from the container's overlay2 upper dir when it is on this machine, as the
        daemon does itself, which saves the ~0.7 s the API call takes for a container with
        a big image below it. A deletion is a whiteout there under the deleted name; a
        folder deleted and made again (opaque) hides which names below it went away, so
        then the daemon is asked after all.
        """
        upper = self.upper_dir(container)
        found: list[str] | None = None if upper is None else _upper_changes(upper)
        if found is None:
            with self._asking(f"listing the changes of container {container[:12]}"):
                return sorted(str(c["Path"]) for c in self._client.api.diff(container) or [])
        return found

    def upper_dir(self, container: str) -> Path | None:
        """The folder holding what the container wrote (overlay2's upper dir), when the
        engine stores it on this machine and it can be read here; else None."""
        if not self.shares_storage():
            return None
        with self._asking(f"inspecting container {container[:12]}"):
            driver = self._client.api.inspect_container(container).get("GraphDriver") or {}
        upper = (driver.get("Data") or {}).get("UpperDir")
        if driver.get("Name") != "overlay2" or not upper:
            return None
        path = Path(upper)
        return path if os.access(path, os.R_OK | os.X_OK) and path.is_dir() else None

    def layer_stacks(
        self, label: str, known: Mapping[str, tuple[str, ...]]
    ) -> dict[str, tuple[str, ...]]:
        """Image ID -> the diff IDs, bottom first, of every image carrying `label`. An image
        ID names its layers for good, so the stacks in `known` are not asked for again (one
        inspect per image: ~0.5 s for the 140 images a machine running the tests holds)."""
        stacks = {}
        with self._asking(f"listing the images labelled {label}"):
            for image in self._client.api.images(filters={"label": label}):
                image_id = str(image["Id"])
                if image_id in known:
                    stacks[image_id] = known[image_id]
                    continue
                with contextlib.suppress(self._errors.NotFound):
                    layers = self._client.api.inspect_image(image_id)["RootFS"]["Layers"]
                    stacks[image_id] = tuple(str(la) for la in layers)
        return stacks

    def inspect(self, ref: str) -> dict[str, Any]:
        """`docker image inspect` of `ref`; a missing image is a BuildError saying so."""
        with self._asking(f"inspecting image {ref}"):
            try:
                found: dict[str, Any] = self._client.api.inspect_image(self._ids.get(ref, ref))
            except self._errors.ImageNotFound:
                msg = f"no image {ref} in the engine. Check the name, or run `sandbox build`"
                raise BuildError(msg) from None
        return found

    def runtimes(self) -> list[str]:
        """The OCI runtimes the daemon offers (runc, and runsc when gVisor is installed)."""
        with self._asking("describing itself (docker info)"):
            return sorted(self._client.info().get("Runtimes") or {})

    def run_confined(
        self, *, image: str, script: str, confinement: Confinement, timeout: float
    ) -> tuple[int, str]:
        """Run `script` with /bin/sh in `image` as `confinement` says; return its exit code
        and output. The containers and the HOME volume are removed after. A run Docker
        refuses (a limit, a network or a runtime it lacks) is a CheckError quoting it."""
        api = self._client.api
        c = confinement
        image = self._ids.get(image, image)
        volume = f"sandbox-check-{os.urandom(6).hex()}" if c.home else None
        binds, copy_in, _ = self._place(image, list(c.mounts))  # what checks write is not kept
        # A folder copied into the container's own filesystem would be hidden by a tmpfs the
        # run mounts over it (/tmp): each goes into a fresh volume instead, mounted as a bind is.
        folders = [(s, t) for s, t in copy_in if Path(s).is_dir()]
        copy_in = [item for item in copy_in if item not in folders]
        filled = [f"sandbox-check-{os.urandom(6).hex()}" for _ in folders]
        try:
            if volume is not None and c.home is not None:
                api.create_volume(volume, labels={"sandbox-builder": "check"})
                self._chown_volume(image, volume, c.user)
                binds[volume] = {"bind": c.home, "mode": "rw"}
            for name, (source, target) in zip(filled, folders, strict=True):
                api.create_volume(name, labels={"sandbox-builder": "check"})
                self._fill_volume(image, name, source)
                st = Path(source).stat()  # a copy cannot give the volume's root our owner
                self._chown_volume(image, name, f"{st.st_uid}:{st.st_gid}")
                # nocopy: else Docker gives an empty volume the owner of the folder it makes
                # for the run's workdir there (root)
                binds[name] = {"bind": target, "mode": "rw,nocopy"}
            return self._run_checked(image, script, c, binds, copy_in, timeout)
        except self._errors.APIError as exc:
            where = f"{_STEP.get()}: " if _STEP.get() else ""
            status = exc.response.status_code if exc.response is not None else "?"
            said = str(exc.explanation or "").strip() or _short(exc)
            msg = (
                f"{where}{self.describe()} refused to run {image} the way the orchestrator "
                f"would (HTTP {status}): {said}. Agents could not start either: fix the image "
                "or [sandbox] in sandbox.toml"
            )
            raise CheckError(msg) from None
        finally:
            for name in [*([volume] if volume else []), *filled]:
                with contextlib.suppress(self._errors.APIError):
                    api.remove_volume(name, force=True)

    def _fill_volume(self, image: str, volume: str, source: str) -> None:
        """Our folder `source`, owners kept, as the contents of the engine's `volume`."""
        api = self._client.api
        host_config = api.create_host_config(
            binds={volume: {"bind": "/mnt", "mode": "rw"}}, network_mode="none"
        )
        helper = api.create_container(
            image, entrypoint=["true"], command=[], host_config=host_config,
            labels={"sandbox-builder": "step"},
        )  # fmt: skip
        cid = str(helper["Id"])
        try:
            self._put_files(cid, [(source, "/mnt")])
        finally:
            self.remove_container(cid)

    def _chown_volume(self, image: str, volume: str, user: str) -> None:
        """Risoluto's helper container: the fresh volume's root given to the agent's uid."""
        api = self._client.api
        host_config = api.create_host_config(
            binds={volume: {"bind": "/mnt", "mode": "rw"}}, network_mode="none"
        )
        helper = api.create_container(
            image,
            entrypoint=["chown", user, "/mnt"],
            command=[],
            user="0:0",
            host_config=host_config,
            labels={"sandbox-builder": "step"},
        )
        cid = str(helper["Id"])
        try:
            api.start(cid)
            code = int(api.wait(cid, timeout=120)["StatusCode"])
            if code != 0:
                tail = api.logs(cid).decode(errors="replace").strip()[-200:]
                msg = f"chown {user} of the fresh HOME volume failed in {image}: {tail}"
                raise CheckError(msg)
        finally:
            self.remove_container(cid)

    def _run_checked(
        self,
        image: str,
        script: str,
        c: Confinement,
        binds: dict[str, dict[str, str]],
        copy_in: list[tuple[str, str]],
        timeout: float,
    ) -> tuple[int, str]:
        from requests.exceptions import ConnectionError as Unanswered
        from requests.exceptions import ReadTimeout

        api = self._client.api
        host_config = api.create_host_config(
            binds=binds,
            tmpfs={path: self._tmpfs_options(opts) for path, opts in c.tmpfs.items()},
            cap_drop=list(c.cap_drop) or None,
            cap_add=list(c.cap_add) or None,
            security_opt=list(c.security_opt) or None,
            network_mode=c.network or "bridge",
            extra_hosts=dict(c.extra_hosts) or None,
            runtime=c.runtime,
            mem_limit=c.memory,
            mem_reservation=c.memory_reservation,
            memswap_limit=c.memory_swap,
            nano_cpus=int(c.cpus * 1e9) if c.cpus else None,
        )
        container = api.create_container(
            image,
            entrypoint=["/bin/sh", "-c"],
            command=[script],
            environment=dict(c.env),
            user=c.user,
            working_dir=c.workdir,
            host_config=host_config,
            labels={"sandbox-builder": "step"},
        )
        cid = str(container["Id"])
        try:
            with self._asking(f"starting a confined container of {image}"):
                if copy_in:
                    self._put_files(cid, copy_in)
                api.start(cid)
            try:
                code = int(api.wait(cid, timeout=timeout)["StatusCode"])
            except (ReadTimeout, Unanswered):
                msg = f"the checks in {image} did not finish within {timeout:.0f}s"
                raise BuildError(msg) from None
            with self._asking(f"reading the output of a container of {image}"):
                return code, api.logs(cid).decode(errors="replace")
        finally:
            self.remove_container(cid)

    def _tmpfs_options(self, options: str) -> str:
        """tmpfs mount options as this engine takes them. Podman knows no `uid=`/`gid=`
        ("unknown mount option"); its `U` makes the tmpfs the container user's, which is
        what they ask for when they name that user (the only use here: HOME for the probe)."""
        if not self.describe().startswith("Podman"):
            return options
        kept = [o for o in options.split(",") if o and not o.startswith(("uid=", "gid="))]
        return ",".join([*kept, "U"]) if len(kept) < len(options.split(",")) else options

    def remove_container(self, container: str) -> None:
        api = self._client.api  # connects first, so the SDK's error classes are known
        what = f"removing container {container[:12]}"
        with self._asking(what), contextlib.suppress(self._errors.NotFound):
            api.remove_container(container, force=True)

    def remove_image(self, image: str) -> None:
        api = self._client.api
        with self._asking(f"removing image {image}"), contextlib.suppress(self._errors.NotFound):
            api.remove_image(self._ids.get(image, image), force=True, noprune=False)

    def images(self, label: str) -> list[ImageInfo]:
        """Images carrying `label` (a key, or key=value)."""
        with self._asking(f"listing the images labelled {label}"):
            found = self._client.api.images(filters={"label": label})
        return [
            ImageInfo(id=i["Id"], tags=tuple(i.get("RepoTags") or ()), size=int(i.get("Size", 0)))
            for i in found
        ]

    def containers(self, label: str) -> list[str]:
        """IDs of stopped containers carrying `label` (a running one belongs to a build)."""
        with self._asking(f"listing the containers labelled {label}"):
            found = self._client.api.containers(
                all=True, filters={"label": label, "status": ["exited", "created", "dead"]}
            )
        return [c["Id"] for c in found]


def _advice(status: object) -> str:
    """What to do about a refusal with HTTP `status`."""
    if status == 404:
        return "It lacks what was named: run `sandbox build` again (it loads what is missing)"
    if isinstance(status, int) and status >= 500:
        return (
            "The engine's own log says more; if it is not Docker Engine 20.10 or later, see "
            "the README's table of engines for what works there"
        )
    return "Fix what the engine names; the README's table of engines says what works where"


def probes_file() -> Path:
    """Where what the probes proved is kept: SANDBOX_PROBES_FILE, else in the user's cache."""
    env = os.environ.get("SANDBOX_PROBES_FILE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("sandbox-builder")) / "engines.json"


def _arriving(output: Iterable[bytes]) -> Iterator[bytes]:
    """What an attached container prints; its socket breaking (the engine went away) is the
    engine no longer answering, as a broken request is."""
    from requests.exceptions import ConnectionError as Unanswered

    try:
        yield from output
    except OSError as exc:
        raise Unanswered(exc) from exc


def _probe_key(source: str) -> tuple[object, ...]:
    """What a probe result holds for: a folder's filesystem, or one version of a file."""
    try:
        st = Path(source).stat()
    except OSError:
        return ("missing", source)
    if stat.S_ISDIR(st.st_mode):
        return ("dir", st.st_dev)
    return ("file", source, st.st_size, st.st_mtime_ns)


def _upper_changes(upper: Path) -> list[str] | None:
    """Every path in an overlay2 upper dir, as `docker diff` names them; None when a folder
    there is opaque (or its marker cannot be read)."""
    found = []
    for folder, dirs, files in os.walk(upper):
        try:
            if folder != str(upper) and os.getxattr(folder, "trusted.overlay.opaque") == b"y":
                return None
        except OSError as exc:
            if exc.errno not in (errno.ENODATA, errno.ENOTSUP):
                return None
        base = "/" + os.path.relpath(folder, upper).removeprefix(".").strip("/")
        found += [f"{base.rstrip('/')}/{name}" for name in [*dirs, *files]]
    return sorted(found)


@contextlib.contextmanager
def kept_container(engine: Engine, result: RunResult) -> Iterator[RunResult]:
    """Remove the step's container however the block ends."""
    try:
        yield result
    finally:
        engine.remove_container(result.container)


def require_success(
    result: RunResult, *, what: str, log: Path, error: type[BuilderError] = BuildError
) -> None:
    if result.stopped_after is not None:
        raise error(limits.stalled(what, seconds=result.stopped_after, log=log))
    if result.exit_code != 0:
        output = log.read_text(errors="replace").strip()
        full = space.step_full(
            output, what=what, log=log, bound=result.bound, storage=result.storage or "the engine"
        )
        if full is not None:
            raise full
        lines = output.splitlines()[-20:]
        tail = "\n".join("    " + line for line in lines)
        msg = f"{what} failed with exit {result.exit_code}:\n{tail}\n  full log: {log}"
        if _TIMED_OUT.search("\n".join(lines)) and limits.NET_TIMEOUT_ENV not in tail:
            msg += f"\n  {limits.network_hint()}"
        raise error(msg)


# How pip, npm, pnpm and uv say a request got no answer in time (urllib3's ReadTimeoutError,
# Node's ETIMEDOUT, npm's "Response timeout while trying to fetch", uv's "operation timed out").
_TIMED_OUT = re.compile(r"timed out|timeout|ETIMEDOUT|ESOCKETTIMEDOUT", re.IGNORECASE)


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


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
