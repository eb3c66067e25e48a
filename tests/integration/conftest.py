"""Real parts for integration tests: the Docker Engine, a registry, and a bootstrapped base.

The engine must already run (scripts/host-setup.sh starts it; `make test` calls that): a test
that cannot reach it fails, it is never skipped. The registry is Debian's `docker-registry`
(the CNCF distribution server) started here on a free port of 127.0.0.1 with storage in a temp
folder. Every test shares one cache dir, so the debootstrap base is built once per session.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration import engines

BOOTSTRAP_BASE = """
[image]
name = "{name}"
user = "agent"

[base]
bootstrap = {{ suite = "bookworm" }}
"""


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class Project:
    """A folder holding a sandbox.toml, driven through the real `sandbox` CLI."""

    root: Path
    cache: Path

    @property
    def spec(self) -> Path:
        return self.root / "sandbox.toml"

    @property
    def lock(self) -> Path:
        return self.root / "sandbox.lock"

    def write(self, text: str) -> None:
        self.spec.write_text(text)

    def sandbox(self, *args: str, env: dict[str, str] | None = None) -> Run:
        done = subprocess.run(
            [sys.executable, "-m", "builder", "-f", str(self.spec), *args],
            capture_output=True,
            text=True,
            env={**os.environ, "SANDBOX_CACHE_DIR": str(self.cache), **(env or {})},
            check=False,
            timeout=1800,
        )
        return Run(code=done.returncode, out=done.stdout, err=done.stderr)

    def ok(self, *args: str) -> Run:
        result = self.sandbox(*args)
        assert result.code == 0, f"sandbox {' '.join(args)} exited {result.code}:\n{result.err}"
        return result


def docker(*args: str, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        msg = f"docker {' '.join(args)} failed: {done.stderr}"
        raise AssertionError(msg)
    return done.stdout.strip()


@pytest.fixture(scope="session", autouse=True)
def docker_engine() -> None:
    """The engine must answer. Images are left when the session ends: builds are deterministic,
    so another session on the same daemon (a test run beside the suite, a `sandbox build`)
    makes the very same image IDs, and removing "ours" would pull images from under it."""
    done = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(
            "Docker Engine not reachable; run ./scripts/host-setup.sh (make test does)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def project(tmp_path: Path, shared_cache: Path) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    return Project(root=root, cache=shared_cache)


@pytest.fixture(scope="session")
def base_image(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> str:
    """The image ID of a debootstrapped bookworm (base + user), built once per session."""
    root = tmp_path_factory.mktemp("base-project")
    base = Project(root=root, cache=shared_cache)
    base.write(BOOTSTRAP_BASE.format(name="sandbox-test/base"))
    base.ok("lock")
    built = json.loads(base.ok("build", "--json").out)
    return str(built["image"]["id"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a real registry (Debian's docker-registry) on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    with (folder / "registry.log").open("w") as log:
        server = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=log)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"registry did not start; see {folder / 'registry.log'}")
            time.sleep(0.2)
    yield address
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="session")
def second_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DOCKER_HOST of a second, clean Docker daemon (DESIGN.md §9), for "another machine".

    It gets its own bridge (docker1): starting one with --bridge=none deletes the first
    daemon's docker0. Its data root is a temp folder, so it starts with no images at all.
    """
    folder = tmp_path_factory.mktemp("dockerd2")
    socket_path = folder / "docker.sock"
    if subprocess.run(["ip", "link", "show", "docker1"], capture_output=True).returncode != 0:
        for command in (
            ["ip", "link", "add", "docker1", "type", "bridge"],
            ["ip", "addr", "add", "172.29.0.1/16", "dev", "docker1"],
            ["ip", "link", "set", "docker1", "up"],
        ):
            subprocess.run(command, check=True, capture_output=True)
    with (folder / "dockerd.log").open("w") as log:
        daemon = subprocess.Popen(
            [
                "dockerd",
                "--data-root", str(folder / "data"),
                "--exec-root", str(folder / "exec"),
                "-H", f"unix://{socket_path}",
                "--pidfile", str(folder / "dockerd.pid"),
                "--bridge=docker1",
            ],
            stdout=log,
            stderr=log,
        )  # fmt: skip
    host = f"unix://{socket_path}"
    deadline = time.monotonic() + 60
    while subprocess.run(
        ["docker", "-H", host, "info"], capture_output=True, check=False
    ).returncode:
        if time.monotonic() > deadline or daemon.poll() is not None:
            daemon.kill()
            pytest.fail(f"second dockerd did not start; see {folder / 'dockerd.log'}")
        time.sleep(0.5)
    yield host
    daemon.terminate()
    daemon.wait(timeout=30)


@pytest.fixture(scope="session")
def engine_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engines")


@pytest.fixture(scope="session")
def docker28_containerd(engine_work: Path) -> Iterator[engines.Engine]:
    """Docker 28.5 with the containerd image store, in a container, over plain TCP."""
    with engines.running_engine(work=engine_work, name="containerd", containerd_store=True) as e:
        yield e


@pytest.fixture(scope="session")
def docker28_overlay2_tls(engine_work: Path) -> Iterator[engines.Engine]:
    """Docker 28.5 with overlay2, in a container, over TCP with TLS (certificates made here)."""
    certs = engines.make_certs(engine_work / "certs")
    with engines.running_engine(
        work=engine_work, name="overlay2", containerd_store=False, certs=certs
    ) as e:
        yield e
