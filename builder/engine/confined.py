"""A container run the way the orchestrator would run an agent (`sandbox check`).

`Confined.run_confined` applies a `Confinement` (user, HOME volume, tmpfs, capabilities,
runtime, network, limits) and returns the exit code and output; a run Docker refuses is a
CheckError quoting it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from builder.core.errors import BuildError, CheckError
from builder.engine.connection import short
from builder.engine.interface import STEP, Confinement
from builder.engine.sharing import Sharing


class Confined(Sharing):
    """`Engine.run_confined` on a Docker daemon."""

    def run_confined(
        self, *, image: str, command: Sequence[str], confinement: Confinement, timeout: float
    ) -> tuple[int, str]:
        """Run `command` in `image` as `confinement` says, after the image's own ENTRYPOINT
        (kept, as Risoluto keeps it); return its exit code and output. The containers and
        the HOME volume are removed after. A run Docker refuses (a limit, a network or a
        runtime it lacks) is a CheckError quoting it."""
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
            return self._run_checked(image, command, c, binds, copy_in, timeout)
        except self._errors.APIError as exc:
            where = f"{STEP.get()}: " if STEP.get() else ""
            status = exc.response.status_code if exc.response is not None else "?"
            said = str(exc.explanation or "").strip() or short(exc)
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
        command: Sequence[str],
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
            command=list(command),
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
