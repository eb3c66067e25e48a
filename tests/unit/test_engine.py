"""Engine refusals (builder/engine/): what the Docker SDK raises becomes a BuilderError.

The fake below stands in for the SDK's client and raises the SDK's own exception classes
(docker.errors, requests.exceptions) with real HTTP responses, as the SDK does when a daemon
answers 4xx/5xx or stops answering.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from docker.errors import APIError, ImageNotFound

from builder.core.errors import BuildError, CheckError, EngineRefusedError, EngineUnavailableError
from builder.engine.docker import DockerEngine
from builder.engine.interface import Confinement, Mount, RunResult, in_step

PODMAN = {"Version": "4.3.1", "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]}
DOCKER = {"Version": "20.10.24+dfsg1", "Components": [{"Name": "Engine"}, {"Name": "containerd"}]}


def refusal(status: int, message: str, cls: type[APIError] = APIError) -> APIError:
    response = requests.Response()
    response.status_code = status
    response.url = "http+docker://localhost/v1.41/containers/create"
    response.reason = "Internal Server Error" if status >= 500 else "Bad Request"
    return cls(f"{status} error", response=response, explanation=message)


class FakeApi:
    """The SDK's low-level client: each named call raises what `fail` gives it."""

    def __init__(self, fail: dict[str, BaseException]) -> None:
        self.fail = fail
        self.calls: list[str] = []
        self.kwargs: dict[str, dict[str, Any]] = {}

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            self.kwargs[name] = kwargs
            if name in self.fail:
                raise self.fail[name]
            return {
                "create_host_config": {},
                "create_container": {"Id": "c0ffee" * 10},
                "wait": {"StatusCode": 0},
                "logs": iter([b"ok\n"]) if kwargs.get("stream") else b"ok\n",
                "attach": iter([b"ok\n"]),
                "load_image": iter([{"error": "layer sha256:ab does not match its digest"}]),
            }.get(name)

        return call


class FakeClient:
    def __init__(self, fail: dict[str, BaseException], version: dict[str, Any]) -> None:
        self.api = FakeApi(fail)
        self._version = version

    def version(self) -> dict[str, Any]:
        return self._version

    def info(self) -> dict[str, Any]:
        return {"Runtimes": {"runc": {}}}


def engine(fail: dict[str, BaseException], version: dict[str, Any] = DOCKER) -> DockerEngine:
    return DockerEngine(sdk=FakeClient(fail, version))


@pytest.fixture(autouse=True)
def _local_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)


def confined(eng: DockerEngine) -> tuple[int, str]:
    confinement = Confinement(user="12345:12345", tmpfs={"/tmp": "uid=12345,gid=12345"})
    return eng.run_confined(
        image="sha256:abc", command=["true"], confinement=confinement, timeout=5
    )


def test_an_option_the_engine_does_not_know_names_step_engine_and_its_message() -> None:
    said = 'container create: unknown mount option "uid=12345": invalid mount option'
    eng = engine({"create_container": refusal(500, said)}, PODMAN)

    with in_step("check"), pytest.raises(CheckError) as raised:
        confined(eng)

    text = str(raised.value)
    assert text.startswith("check: Podman 4.3.1 refused to run sha256:abc the way the orchestrator")
    assert "HTTP 500" in text
    assert said in text
    assert raised.value.exit_code == 5


def step_run(eng: DockerEngine, log: Path) -> RunResult:
    return eng.run(
        image="sha256:abc",
        script="true",
        log=log,
        env={},
        mounts=[Mount(source="/x", target="/y")],
        network=True,
    )


def test_a_step_container_that_cannot_start_exits_127_with_the_engines_words(
    tmp_path: Path,
) -> None:
    """As a shell does for a missing program: the caller's message shows the log's tail."""
    said = 'OCI runtime create failed: exec: "/bin/sh": stat /bin/sh: no such file or directory'
    eng = engine({"start": refusal(400, said)})

    result = step_run(eng, tmp_path / "step.log")

    assert result.exit_code == 127
    logged = (tmp_path / "step.log").read_text()
    assert logged == f"the container did not start: Docker Engine 20.10.24+dfsg1: {said}\n"


def test_a_step_the_engine_drops_is_named_and_its_container_removed(tmp_path: Path) -> None:
    eng = engine({"attach": refusal(500, "io: read/write on closed pipe")})

    with in_step("tools.npm"), pytest.raises(EngineRefusedError) as raised:
        step_run(eng, tmp_path / "step.log")

    text = str(raised.value)
    assert text.startswith("tools.npm: Docker Engine 20.10.24+dfsg1 refused running a container")
    assert "io: read/write on closed pipe" in text
    assert "remove_container" in eng._client.api.calls


def test_an_image_the_engine_lacks_is_named() -> None:
    eng = engine({"inspect_image": refusal(404, "No such image: sha256:abc", ImageNotFound)})

    with pytest.raises(EngineRefusedError) as raised:
        eng.image_env("sha256:abc")

    assert "refused inspecting image sha256:abc (HTTP 404): No such image" in str(raised.value)
    assert "run `sandbox build` again" in str(raised.value)
    assert raised.value.status == 404  # what gc reads: 409 is an image in use, kept


def test_a_refused_load_names_the_engine() -> None:
    with pytest.raises(EngineRefusedError, match="does not match its digest") as raised:
        engine({}).load(iter([b""]))

    assert "Docker Engine 20.10.24+dfsg1 refused to load the image" in str(raised.value)


def test_an_engine_that_stops_answering_is_unavailable_exit_9() -> None:
    gone = requests.exceptions.ConnectionError("Connection aborted: RemoteDisconnected")
    eng = engine({"commit": gone})

    with in_step("system"), pytest.raises(EngineUnavailableError) as raised:
        eng.commit("c0ffee" * 10)

    assert str(raised.value).startswith("system: the engine stopped answering while committing")
    assert raised.value.exit_code == 9


def test_the_engine_is_named_with_its_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/podman/podman.sock")

    assert engine({}, PODMAN).describe() == "Podman 4.3.1 at unix:///run/podman/podman.sock"


def test_errors_of_our_own_are_not_rewritten() -> None:
    eng = engine({"inspect_image": refusal(404, "No such image: x", ImageNotFound)})

    with pytest.raises(BuildError, match="no image x in the engine"):
        eng.inspect("x")


def test_a_bug_keeps_its_traceback() -> None:
    with pytest.raises(KeyError):
        engine({"commit": KeyError("Id")}).commit("c0ffee")


@pytest.mark.parametrize(("version", "options"), [(DOCKER, "uid=12345,gid=12345"), (PODMAN, "U")])
def test_a_tmpfs_owned_by_the_user_is_said_in_the_engines_own_words(
    version: dict[str, Any], options: str
) -> None:
    eng = engine({}, version)

    assert confined(eng) == (0, "ok\n")

    assert eng._client.api.kwargs["create_host_config"]["tmpfs"] == {"/tmp": options}


def test_a_confined_run_keeps_the_image_entrypoint_and_passes_the_command() -> None:
    """As Risoluto runs the agent: `docker run IMAGE bash -lc ...`, no --entrypoint."""
    eng = engine({})

    assert confined(eng) == (0, "ok\n")

    created = eng._client.api.kwargs["create_container"]
    assert "entrypoint" not in created
    assert created["command"] == ["true"]
