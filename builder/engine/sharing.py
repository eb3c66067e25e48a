"""Whether the daemon sees our files, proved by a probe container, and how mounts travel.

A bind mount of a marker file of ours must show that file (`Sharing._sees`); what a probe
proved is kept in the user's cache (`probes_file`) for this daemon and boot. Where the daemon
does not see a source, it is copied in (and back out) through the API (`transfer`), or a
download cache becomes an engine-owned volume.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import secrets
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path

from builder.core.atomic import write_atomic
from builder.engine import transfer
from builder.engine.connection import Connection
from builder.engine.interface import Mount

_PROBE = "/sandbox-builder-probe"  # where a probe container shows what it was given


class Sharing(Connection):
    """How each mount reaches a container: bound where the daemon sees it, else copied."""

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


def probes_file() -> Path:
    """Where what the probes proved is kept: SANDBOX_PROBES_FILE, else in the user's cache."""
    env = os.environ.get("SANDBOX_PROBES_FILE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("sandbox-builder")) / "engines.json"


def _probe_key(source: str) -> tuple[object, ...]:
    """What a probe result holds for: a folder's filesystem, or one version of a file."""
    try:
        st = Path(source).stat()
    except OSError:
        return ("missing", source)
    if stat.S_ISDIR(st.st_mode):
        return ("dir", st.st_dev)
    return ("file", source, st.st_size, st.st_mtime_ns)
