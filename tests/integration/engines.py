"""Newer Docker engines for integration tests: Debian sid's docker.io run as a daemon inside a
container on the host's daemon (DESIGN.md §9), reached over TCP only.

The daemon's filesystem is its container's, not ours: the client shares no folder with it,
as with Docker Desktop, colima or a remote build host. Its image is debootstrapped once and
kept on the host daemon under a tag naming what went into it, so later runs start a daemon in
seconds. Each daemon gets its own data roots (bind mounts of temp folders: overlayfs cannot
sit on the container's own overlay), a daemon.json choosing the image store, and, with TLS,
certificates made here with openssl.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SUITE = "sid"
PACKAGES = ("docker.io", "docker-buildx", "iptables", "ca-certificates", "procps")
MIRROR = "http://deb.debian.org/debian"
REPO = "sandbox-test/dockerd"
PREFIX = "sandbox-test-dockerd"  # every container this module starts is named so
_RECIPE = json.dumps({"suite": SUITE, "packages": PACKAGES, "mirror": MIRROR, "v": 1})
TAG = f"{REPO}:{hashlib.sha256(_RECIPE.encode()).hexdigest()[:12]}"
PORT = 2375


@dataclass(frozen=True, kw_only=True)
class Engine:
    """A daemon in a container: what a client needs to reach it."""

    name: str  # the container's name on the host daemon
    host: str  # DOCKER_HOST
    env: dict[str, str] = field(default_factory=dict)  # DOCKER_HOST and, with TLS, the rest
    version: str
    storage: str  # overlay2 | overlayfs (the containerd snapshotter)


def _run(*argv: str, timeout: float = 600) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    if done.returncode != 0:
        msg = f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}"
        raise AssertionError(msg)
    return done.stdout.strip()


def engine_image(work: Path) -> str:
    """The daemon's image on the host daemon: debootstrapped and imported when missing."""
    present = subprocess.run(["docker", "image", "inspect", TAG], capture_output=True)
    if present.returncode == 0:
        return TAG
    root = work / "dockerd-root"
    try:
        _run(
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(root),
            MIRROR,
            timeout=1200,
        )
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc"):
            shutil.rmtree(root / junk, ignore_errors=True)
        # `with` closes our end of the pipe (left open, it was an unraisable ResourceWarning)
        label = "LABEL dev.sandbox-builder.test=dockerd"
        with subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE) as tar:
            done = subprocess.run(
                ["docker", "import", "--change", label, "-", TAG],
                stdin=tar.stdout,
                capture_output=True,
                check=False,
            )
        if done.returncode != 0 or tar.returncode != 0:
            msg = f"docker import of {root} failed: {done.stderr.decode()[-2000:]}"
            raise AssertionError(msg)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return TAG


def make_certs(folder: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as DOCKER_CERT_PATH
    wants them (ca.pem, cert.pem, key.pem), plus server-cert.pem / server-key.pem."""
    folder.mkdir(parents=True, exist_ok=True)

    def pem(name: str) -> str:
        return str(folder / f"{name}.pem")

    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", pem("ca-key"), "-out", pem("ca"), "-subj", "/CN=sandbox-test-ca")  # fmt: skip
    for who, ext in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (folder / f"{who}.ext").write_text(ext + "\n")
        csr = str(folder / f"{who}.csr")
        _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", pem(f"{who}-key"),
             "-out", csr, "-subj", f"/CN=sandbox-test-{who}")  # fmt: skip
        _run("openssl", "x509", "-req", "-in", csr, "-CA", pem("ca"), "-CAkey", pem("ca-key"),
             "-CAcreateserial", "-days", "2", "-out", pem(f"{who}-cert"),
             "-extfile", str(folder / f"{who}.ext"))  # fmt: skip
    shutil.copy(folder / "client-cert.pem", folder / "cert.pem")
    shutil.copy(folder / "client-key.pem", folder / "key.pem")
    return folder


_START = """set -e
mkdir -p /run/engine
containerd >/run/engine/containerd.log 2>&1 &
for i in $(seq 100); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.1; done
exec dockerd --containerd=/run/containerd/containerd.sock {hosts} >/run/engine/dockerd.log 2>&1
"""


@contextmanager
def running_engine(
    *,
    work: Path,
    name: str,
    containerd_store: bool,
    certs: Path | None = None,
    insecure_registries: tuple[str, ...] = (),
    keep_data: bool = False,
) -> Iterator[Engine]:
    """Start a daemon in a container of the host daemon, wait until it answers, remove it
    after. Its API is published on a free port of 127.0.0.1 (TLS with `certs`); it pushes
    to `insecure_registries` over plain HTTP. With `keep_data` its data roots stay in
    `work/name` for the next start (images, build cache and BuildKit's cache mounts)."""
    image = engine_image(work)
    data = work / name
    (data / "docker").mkdir(parents=True, exist_ok=True)
    (data / "containerd").mkdir(parents=True, exist_ok=True)
    config: dict[str, object] = {"features": {"containerd-snapshotter": containerd_store}}
    if insecure_registries:
        config["insecure-registries"] = list(insecure_registries)
    (data / "daemon.json").write_text(json.dumps(config))
    hosts = f"-H tcp://0.0.0.0:{PORT}"
    if certs is not None:
        hosts = (
            f"--tlsverify --tlscacert=/certs/ca.pem --tlscert=/certs/server-cert.pem "
            f"--tlskey=/certs/server-key.pem -H tcp://0.0.0.0:{PORT}"
        )
    container = f"{PREFIX}-{name}"
    subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
    _run(
        "docker", "run", "-d", "--name", container,
        "--label", "dev.sandbox-builder.test=dockerd",
        "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "--security-opt", "systempaths=unconfined",
        "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "-v", f"{data / 'docker'}:/var/lib/docker",
        "-v", f"{data / 'containerd'}:/var/lib/containerd",
        "-v", f"{data / 'daemon.json'}:/etc/docker/daemon.json:ro",
        *(["-v", f"{certs}:/certs:ro"] if certs is not None else []),
        "-p", f"127.0.0.1::{PORT}",
        image, "/bin/sh", "-c", _START.format(hosts=hosts),
    )  # fmt: skip
    try:
        port = _run("docker", "port", container, f"{PORT}/tcp").splitlines()[0].rsplit(":", 1)[1]
        host = f"tcp://127.0.0.1:{port}"
        env = {"DOCKER_HOST": host}
        if certs is not None:
            env |= {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs)}
        info = _wait(container, env)
        yield Engine(
            name=container,
            host=host,
            env=env,
            version=str(info["ServerVersion"]),
            storage=str(info["Driver"]),
        )
    finally:
        # the daemon's files belong to root in its container; removing them needs no daemon
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        if not keep_data:
            shutil.rmtree(data, ignore_errors=True)


def _wait(container: str, env: dict[str, str]) -> dict[str, object]:
    import os

    deadline = time.monotonic() + 90
    while True:
        done = subprocess.run(
            ["docker", "info", "--format", "{{json .}}"],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            check=False,
        )
        if done.returncode == 0:
            info: dict[str, object] = json.loads(done.stdout)
            return info
        if time.monotonic() > deadline:
            logs = subprocess.run(
                ["docker", "exec", container, "cat", "/run/engine/dockerd.log"],
                capture_output=True,
                text=True,
                check=False,
            )
            msg = f"the daemon in {container} did not answer: {logs.stdout[-3000:]}"
            raise AssertionError(msg)
        time.sleep(0.5)


if __name__ == "__main__":  # warm the image: python -m tests.integration.engines
    import tempfile

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        print(engine_image(Path(tmp)), f"{time.monotonic() - started:.1f}s")
