"""How a step's mounts reach an engine (builder/engine/): bind mounts where a probe proved
the daemon sees our files, else copied in and back out, download caches as engine volumes;
the overlay2 upper dir is read only where the daemon was proved to be on this machine.

The Docker SDK's low-level API is faked: a "remote" fake refuses bind mounts of any path
(as a daemon elsewhere does: no such path there), a "local" one shows our files.
"""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from builder.engine.docker import DockerEngine
from builder.engine.interface import Mount, diff_folder


class FakeApi:
    def __init__(self, *, local: bool) -> None:
        self.local = local
        self.containers: dict[str, dict[str, Any]] = {}
        self.put: list[tuple[str, list[str]]] = []
        self.archived: list[str] = []
        self.out: Path | None = None  # what a step "wrote" at a target copied back

    def create_host_config(self, **kwargs: Any) -> dict[str, Any]:
        return kwargs

    def create_container(self, image: str, **kwargs: Any) -> dict[str, str]:
        mounts = kwargs["host_config"].get("mounts") or []
        if mounts and not self.local:
            msg = "invalid mount config for type bind: bind source path does not exist"
            raise docker.errors.APIError(msg)
        cid = f"c{len(self.containers)}"
        self.containers[cid] = {"image": image, **kwargs}
        return {"Id": cid}

    def get_archive(self, cid: str, path: str) -> tuple[list[bytes], dict[str, Any]]:
        self.archived.append(path)
        config = self.containers[cid]
        for m in config["host_config"].get("mounts") or []:
            if path.startswith(m["Target"]):
                source = Path(m["Source"] + path.removeprefix(m["Target"]))
                return [_tar_of(source)], {}
        assert self.out is not None
        return [_tar_of(self.out)], {}

    def _url(self, template: str, cid: str) -> str:
        return template.format(cid)

    def _put(self, url: str, *, params: dict[str, str], data: bytes) -> None:
        assert params["copyUIDGID"] == "1", "owners are kept, as a bind mount shows them"
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            self.put.append((params["path"], sorted(archive.getnames())))

    def _raise_for_status(self, response: object) -> None:
        pass

    def remove_container(self, cid: str, force: bool) -> None:
        self.containers[cid]["removed"] = True

    def start(self, cid: str) -> None:
        pass

    def logs(self, cid: str, **kwargs: Any) -> list[bytes]:
        return [b"ok\n"]

    def attach(self, cid: str, **kwargs: Any) -> Iterator[bytes]:
        return iter([b"ok\n"])

    def wait(self, cid: str) -> dict[str, int]:
        return {"StatusCode": 0}

    def inspect_container(self, cid: str) -> dict[str, Any]:
        return {"GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": "/"}}}


def _tar_of(path: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        out.add(path, arcname=path.name)
    return buffer.getvalue()


def _engine(api: FakeApi) -> DockerEngine:
    engine = DockerEngine.__new__(DockerEngine)
    engine._socket = None
    engine._sdk = type("Sdk", (), {"api": api, "info": lambda _: {"ID": "fake-daemon"}})()
    engine._errors = docker.errors
    engine._connecting = threading.Lock()
    engine._ids = {}
    engine._visible = {}
    engine._probing = threading.Lock()
    engine._scope = None
    return engine


@pytest.fixture(autouse=True)
def probes_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "engines.json"
    monkeypatch.setenv("SANDBOX_PROBES_FILE", str(path))
    return path


def _step(engine: DockerEngine, tmp_path: Path, mounts: list[Mount]) -> None:
    engine.run(
        image="img", script="true", log=tmp_path / "log", env={}, mounts=mounts, network=False
    )


def _mounts(tmp_path: Path) -> list[Mount]:
    for folder in ("inputs", "downloads", "prefix"):
        (tmp_path / folder).mkdir(exist_ok=True)
    (tmp_path / "inputs" / "req.txt").write_text("ruff\n")
    (tmp_path / "ca.crt").write_text("CERT")
    return [
        Mount(source=str(tmp_path / "ca.crt"), target="/tmp/ca.crt"),
        Mount(source=str(tmp_path / "inputs"), target="/tmp/in"),
        Mount(
            source=str(tmp_path / "downloads"), target="/root/.npm", read_only=False, cache="npm"
        ),
        Mount(source=str(tmp_path / "prefix"), target="/opt/sandbox/tools/npm", read_only=False),
    ]


def test_a_daemon_that_sees_our_files_gets_bind_mounts(tmp_path: Path) -> None:
    api = FakeApi(local=True)
    engine = _engine(api)
    _step(engine, tmp_path, _mounts(tmp_path))
    step = api.containers[max(api.containers)]
    assert sorted(step["host_config"]["binds"]) == sorted(m.source for m in _mounts(tmp_path))
    assert api.put == []
    assert len([c for c in api.containers.values() if c.get("removed")]) == 1, "one probe"
    assert not any(tmp_path.rglob(".sandbox-probe-*")), "the markers are gone"
    assert diff_folder(engine, max(api.containers)) is not None


def test_a_daemon_elsewhere_gets_copies_volumes_and_the_prefix_back(tmp_path: Path) -> None:
    api = FakeApi(local=False)
    engine = _engine(api)
    made = tmp_path / "made" / "npm"  # what the step writes under its prefix, in the engine
    (made / "semver").mkdir(parents=True)
    (made / "semver" / "package.json").write_text("{}")
    api.out = made
    mounts = _mounts(tmp_path)
    _step(engine, tmp_path, mounts)
    step = api.containers[max(api.containers)]
    assert step["host_config"]["binds"] == {
        "sandbox-builder-cache-npm": {"bind": "/root/.npm", "mode": "rw"}
    }
    assert api.put == [("/", ["opt/sandbox/tools/npm", "tmp/ca.crt", "tmp/in", "tmp/in/req.txt"])]
    assert api.archived[-1] == "/opt/sandbox/tools/npm"
    assert (tmp_path / "prefix" / "semver" / "package.json").read_text() == "{}"
    assert diff_folder(engine, max(api.containers)) is None, "never read a remote daemon's disk"


@pytest.mark.parametrize("local", [True, False])
def test_each_filesystem_is_probed_once(tmp_path: Path, local: bool) -> None:
    api = FakeApi(local=local)
    api.out = tmp_path / "npm"
    api.out.mkdir()
    engine = _engine(api)
    mounts = _mounts(tmp_path)
    for _ in range(3):
        _step(engine, tmp_path, mounts)
    steps = [c for c in api.containers.values() if not c.get("removed")]
    assert len(steps) == 3
    probes = len(api.containers) - 3
    assert probes == (1 if local else 0), "a refused probe container is never made"


def test_what_a_probe_proved_is_remembered_for_the_next_build(
    tmp_path: Path, probes_file: Path
) -> None:
    api = FakeApi(local=True)
    mounts = _mounts(tmp_path)
    _step(_engine(api), tmp_path, mounts)
    assert len(api.containers) == 2, "a probe, then the step"
    assert "fake-daemon/" in probes_file.read_text()
    again = FakeApi(local=True)
    _step(_engine(again), tmp_path, mounts)
    assert len(again.containers) == 1, "the next build's engine does not probe again"
    step = again.containers["c0"]
    assert len(step["host_config"]["binds"]) == 4
