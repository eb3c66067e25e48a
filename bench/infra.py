"""The real things the benchmark runs against: a registry, a byte-counting proxy, a CA server.

- `LocalRegistry`: Debian's `docker-registry` (the CNCF distribution server) on a free port of
  127.0.0.1 with its storage in a folder; `wipe()` restarts it empty on the same port.
- `CountingProxy`: a TCP forwarder in front of it that counts the bytes clients send. Both
  `sandbox publish` and `docker push` talk to the registry through it, so "bytes a push
  uploads" is measured on the wire, headers included; the registry's storage growth (blobs
  not there before) is measured as well, as a cross-check. `CountedRegistry` is the pair.
- `CAServer`: serves the host's CA bundle over HTTP on the docker0 bridge, for the
  Dockerfile's RUN steps (see bench/dockerfile.py for why not COPY).
"""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and where its log is."""


def sh(
    args: Sequence[str],
    *,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> str:
    """Run a command; stdout is returned, stderr (and stdout) appended to `log` if given."""
    done = subprocess.run(list(args), capture_output=True, text=True, env=env, check=False)
    if log is not None:
        with log.open("a") as out:
            out.write(f"$ {' '.join(args)}\n{done.stdout}{done.stderr}\n")
    if check and done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        where = f" (log: {log})" if log else ""
        msg = f"`{' '.join(args[:4])} ...` exited {done.returncode}{where}:\n{tail}"
        raise BenchError(msg)
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRegistry:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self._server: subprocess.Popen[bytes] | None = None

    @property
    def storage(self) -> Path:
        return self.folder / "data"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "config.yml"
        config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
        )
        with (self.folder / "registry.log").open("a") as log:
            self._server = subprocess.Popen(
                ["docker-registry", "serve", str(config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/", timeout=2):
                    return
            except OSError:
                if time.monotonic() > deadline or self._server.poll() is not None:
                    msg = f"docker-registry did not start; see {self.folder / 'registry.log'}"
                    raise BenchError(msg) from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self._server is not None:
            self._server.terminate()
            self._server.wait(timeout=30)
            self._server = None

    def wipe(self) -> None:
        """Restart empty: nothing pushed before is there any more."""
        self.stop()
        shutil.rmtree(self.storage, ignore_errors=True)
        self.start()

    def blobs(self) -> dict[str, int]:
        """digest -> size of every blob the registry stores."""
        root = self.storage / "docker/registry/v2/blobs/sha256"
        if not root.is_dir():
            return {}
        return {data.parent.name: data.stat().st_size for data in root.glob("*/*/data")}


class CountingProxy:
    """<address>:<port> forwarding to `upstream`, counting what clients send through it
    (127.0.0.1, or the docker0 gateway for a daemon in a container)."""

    def __init__(self, upstream_port: int, *, address: str = "127.0.0.1") -> None:
        self._upstream = ("127.0.0.1", upstream_port)
        self._server = socket.create_server((address, 0))
        self.address = address
        self.port = int(self._server.getsockname()[1])
        self._lock = threading.Lock()
        self._sent = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def sent(self) -> int:
        with self._lock:
            return self._sent

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self._upstream)
        except OSError:
            client.close()
            return
        back = threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True)
        back.start()
        self._pump(client, upstream, True)
        back.join()
        client.close()
        upstream.close()

    def _pump(self, source: socket.socket, dest: socket.socket, count: bool) -> None:
        try:
            while chunk := source.recv(1 << 20):
                dest.sendall(chunk)
                if count:
                    with self._lock:
                        self._sent += len(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dest.shutdown(socket.SHUT_WR)


class CountedRegistry:
    """A `LocalRegistry` behind its own `CountingProxy` on `address` (127.0.0.1, or the
    docker0 gateway for a daemon in a container): one per contender, so that pushes run
    side by side and each counts every blob its image needs (no layer already sent by
    another contender's push)."""

    def __init__(self, folder: Path, *, address: str = "127.0.0.1") -> None:
        self.registry = LocalRegistry(folder)
        self.proxy = CountingProxy(self.registry.port, address=address)

    @property
    def host(self) -> str:
        """host:port of the counting proxy, as image references name it."""
        return f"{self.proxy.address}:{self.proxy.port}"

    def start(self) -> None:
        self.registry.start()

    def close(self) -> None:
        self.proxy.close()
        self.registry.stop()

    def measure(self, push: Callable[[], object]) -> tuple[int, int]:
        """(bytes sent to the registry, bytes its storage grew by) during `push()`."""
        before, sent = self.registry.blobs(), self.proxy.sent
        push()
        grown = sum(size for d, size in self.registry.blobs().items() if d not in before)
        return self.proxy.sent - sent, grown


class CAServer:
    """Serves one file, the CA bundle, at http://<docker0 gateway>:<port>/ca.crt."""

    def __init__(self, bundle: Path) -> None:
        data = bundle.read_bytes()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/ca.crt":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer((bridge_gateway(), 0), Handler)
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host!s}:{port}/ca.crt"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge, where build containers reach it."""
    out = sh(["docker", "network", "inspect", "bridge"])
    config = json.loads(out)[0]["IPAM"]["Config"][0]
    if "Gateway" in config:
        return str(config["Gateway"])
    # A docker0 that existed before the daemon started has no Gateway recorded: the bridge
    # then holds the subnet's first address.
    return str(next(ipaddress.ip_network(config["Subnet"]).hosts()))


def image_ids(*filters: str, repo: str = "", env: dict[str, str] | None = None) -> set[str]:
    args = ["docker", "images", "-q", "--no-trunc", *(f"--filter={f}" for f in filters)]
    return set(sh([*args, repo] if repo else args, env=env).split())


def built_on(base: str) -> set[str]:
    """Every image whose chain of parents reaches `base`: what the classic builder keeps as
    its cache (intermediate images of every step). A final image removed while another
    image still holds its parents leaves them behind, and a later "cold" build would find
    its steps cached."""
    ids = sh(["docker", "images", "-a", "-q", "--no-trunc"]).split()
    if not ids:
        return set()
    out = sh(["docker", "image", "inspect", "-f", "{{.Id}} {{.Parent}}", *ids])
    parent = dict([*line.split(), ""][:2] for line in out.splitlines() if line.strip())
    found = set()
    for image in parent:
        step = parent.get(image, "")
        while step:
            if step == base:
                found.add(image)
                break
            step = parent.get(step, "")
    return found


def remove_images(ids: set[str], *, env: dict[str, str] | None = None) -> None:
    """`docker rmi -f` them (untagged parents, i.e. the classic builder's cache, go too)."""
    if ids:
        sh(["docker", "rmi", "-f", *sorted(ids)], check=False, env=env)


def image_size(ref: str, *, host: str = "") -> int:
    target = ["-H", host] if host else []
    return int(sh(["docker", *target, "image", "inspect", "-f", "{{.Size}}", ref]).strip())


def image_layers(ids: set[str]) -> dict[str, list[str]]:
    """image ID -> its diff IDs, bottom first."""
    if not ids:
        return {}
    found = json.loads(sh(["docker", "image", "inspect", *sorted(ids)], check=False) or "[]")
    return {i["Id"]: list(i["RootFS"].get("Layers") or []) for i in found}


def suite_running() -> bool:
    """Whether a pytest run (such as the project's test suite) is using this machine."""
    done = subprocess.run(["pgrep", "-f", "pytest"], capture_output=True, check=False)
    return done.returncode == 0


class SecondDaemon:
    """The teammate's machine: a clean Docker daemon beside the host's (DESIGN.md §9), with
    its own bridge (never `--bridge=none`: that deletes the host's docker0), its own data
    root, and a socket in `folder`. `fresh()` restarts it with nothing in it at all."""

    BRIDGE = "sbx21br"
    ADDRESS = "172.41.0.1/16"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.host = f"unix://{folder / 'docker.sock'}"
        self._daemon: subprocess.Popen[bytes] | None = None
        self._made_bridge = False

    def fresh(self) -> None:
        self.stop()
        shutil.rmtree(self.folder / "data", ignore_errors=True)
        self._start()

    def _start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._bridge()
        with (self.folder / "dockerd.log").open("a") as log:
            self._daemon = subprocess.Popen(
                [
                    "dockerd",
                    "--data-root", str(self.folder / "data"),
                    "--exec-root", str(self.folder / "exec"),
                    "-H", self.host,
                    "--pidfile", str(self.folder / "dockerd.pid"),
                    f"--bridge={self.BRIDGE}",
                ],
                stdout=log,
                stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + 90
        while subprocess.run(
            ["docker", "-H", self.host, "info"], capture_output=True, check=False
        ).returncode:
            if time.monotonic() > deadline or self._daemon.poll() is not None:
                self.stop()
                msg = f"the second dockerd did not start; see {self.folder / 'dockerd.log'}"
                raise BenchError(msg)
            time.sleep(0.5)

    def _bridge(self) -> None:
        if subprocess.run(["ip", "link", "show", self.BRIDGE], capture_output=True).returncode:
            for command in (
                ["ip", "link", "add", self.BRIDGE, "type", "bridge"],
                ["ip", "addr", "add", self.ADDRESS, "dev", self.BRIDGE],
                ["ip", "link", "set", self.BRIDGE, "up"],
            ):
                sh(command)
            self._made_bridge = True

    def stop(self) -> None:
        if self._daemon is not None:
            self._daemon.terminate()
            try:
                self._daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._daemon.kill()
                self._daemon.wait(timeout=30)
            self._daemon = None

    def close(self) -> None:
        """Stop it, drop its data and the bridge this object made."""
        self.stop()
        shutil.rmtree(self.folder / "data", ignore_errors=True)
        if self._made_bridge:
            sh(["ip", "link", "del", self.BRIDGE], check=False)
            self._made_bridge = False


def prune_build_cache(log: Path, *, env: dict[str, str] | None = None) -> None:
    """Drop BuildKit's build cache except its cache mounts (`exec.cachemount`: the download
    caches a BuildKit user keeps). 20.10 compares filters by equality only (a `type!=`
    filter is ignored and would prune everything), so each other record type is pruned.
    `env` points the client at another daemon (buildx's)."""
    for kind in ("regular", "source.local", "source.git.checkout", "internal", "frontend"):
        sh(["docker", "builder", "prune", "-af", "--filter", f"type={kind}"], log=log, env=env)


def cache_mounts(*, env: dict[str, str] | None = None) -> set[str]:
    """The targets of the cache mounts BuildKit keeps for the benchmark's builds (20.10's
    descriptions name a mount's target and command, not its id)."""
    df = ["docker", "system", "df", "-v", "--format", "{{json .BuildCache}}"]
    out = sh(df, check=False, env=env)
    found = set()
    for record in json.loads(out or "[]") or []:
        description = str(record.get("Description", ""))
        ours = "/opt/sandbox/" in description or "Keep-Downloaded-Packages" in description
        if record.get("CacheType") == "exec.cachemount" and ours:
            found |= set(re.findall(r"^cached mount (\S+) from exec", description))
    return found


def load_average() -> float:
    """The 1-minute load average (how busy the machine was; 2 cores here)."""
    return round(os.getloadavg()[0], 2)
