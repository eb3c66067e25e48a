"""The steps' containers: run a script in one, commit it, list what it changed.

`Containers.run` is a build step (root, /bin/sh -ec, the step limit, the log flushed as it
arrives); `changes` reads the container's overlay2 upper dir when it is on this machine.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from builder.core import limits, space
from builder.core.errors import BuilderError
from builder.engine import transfer
from builder.engine.connection import short
from builder.engine.interface import Mount, RunResult
from builder.engine.sharing import Sharing


class Containers(Sharing):
    """The step operations of `Engine` on a Docker daemon, and its `DiffFolders`."""

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
                        said = str(exc.explanation or "").strip() or short(exc)
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
        """`DiffFolders`: the folder holding what the container wrote (overlay2's upper
        dir), when the engine stores it on this machine and it can be read here; else None
        (another storage driver, the containerd image store, a daemon elsewhere)."""
        if not self.shares_storage():
            return None
        with self._asking(f"inspecting container {container[:12]}"):
            driver = self._client.api.inspect_container(container).get("GraphDriver") or {}
        upper = (driver.get("Data") or {}).get("UpperDir")
        if driver.get("Name") != "overlay2" or not upper:
            return None
        path = Path(upper)
        return path if os.access(path, os.R_OK | os.X_OK) and path.is_dir() else None

    def containers(self, label: str) -> list[str]:
        """IDs of stopped containers carrying `label` (a running one belongs to a build)."""
        with self._asking(f"listing the containers labelled {label}"):
            found = self._client.api.containers(
                all=True, filters={"label": label, "status": ["exited", "created", "dead"]}
            )
        return [c["Id"] for c in found]


def _arriving(output: Iterable[bytes]) -> Iterator[bytes]:
    """What an attached container prints; its socket breaking (the engine went away) is the
    engine no longer answering, as a broken request is."""
    from requests.exceptions import ConnectionError as Unanswered

    try:
        yield from output
    except OSError as exc:
        raise Unanswered(exc) from exc


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
