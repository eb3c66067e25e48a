"""Real faults for the fault tests: a mirror and an index that can stall, a registry to kill.

`Mirror` is an HTTP server on the host's docker0 address (so both host programs such as
debootstrap and build containers reach it) that relays each request to deb.debian.org, or
under `/pypi` to PyPI and under `/npm` to the npm registry, or, once `stall()` is called,
accepts connections and never answers: what a dead proxy or a wedged mirror does
(`stall("/npm/")` stalls the requests under that path only). `relay()` brings it back.
`RegistryServer` is a registry process of the test's own, killed with SIGKILL in the middle
of an upload and started again on its storage; `Dockerd` is a Docker daemon of the test's
own, killed and started again in the same way, whose data root can be a small tmpfs to fill.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

UPSTREAM = "http://deb.debian.org"
ROUTES = {"/pypi/": "https://pypi.org/", "/npm/": "https://registry.npmjs.org/"}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}


def docker0_address() -> str:
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True, text=True, check=True
    ).stdout
    return out.split(" inet ", 1)[1].split("/", 1)[0]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    stalled: threading.Event
    released: threading.Event
    stall_under: str  # "": every connection; else requests for paths under it


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def handle(self) -> None:
        if self.server.stalled.is_set() and not self.server.stall_under:
            self.server.released.wait()  # the connection is accepted; no byte comes back
            return
        super().handle()

    def do_GET(self) -> None:
        if self.server.stalled.is_set() and self.path.startswith(self.server.stall_under):
            self.server.released.wait()
            self.close_connection = True
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers.pop("Host", None)
        url = UPSTREAM + self.path
        for prefix, upstream in ROUTES.items():
            if self.path.startswith(prefix):
                url = upstream + self.path.removeprefix(prefix)
        request = urllib.request.Request(url, headers=headers)
        try:
            response: Any = urllib.request.urlopen(request, timeout=60)
        except urllib.error.HTTPError as exc:
            response = exc
        with response:
            body = response.read()
            self.send_response(response.status)
            for name, value in response.headers.items():
                if name.lower() not in _HOP_BY_HOP | {"content-length"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Mirror:
    """deb.debian.org, PyPI and npm relayed on docker0, or stalled; `url` is the Debian
    mirror's base, `pypi` a PyPI simple index, `npm` an npm registry."""

    def __init__(self) -> None:
        self._server = _Server((docker0_address(), 0), _Handler)
        self._server.stalled = threading.Event()
        self._server.released = threading.Event()
        self._server.stall_under = ""
        host, port = self._server.server_address[:2]
        self.host = str(host)
        self.url = f"http://{host!s}:{port}/debian"
        self.pypi = f"http://{host!s}:{port}/pypi/simple"
        self.npm = f"http://{host!s}:{port}/npm/"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stall(self, under: str = "") -> None:
        self._server.released.clear()
        self._server.stall_under = under
        self._server.stalled.set()

    def relay(self) -> None:
        self._server.stalled.clear()
        self._server.released.set()

    def close(self) -> None:
        self.relay()
        self._server.shutdown()
        self._server.server_close()


class RegistryServer:
    """Debian's docker-registry on a fixed port and storage folder, to kill and start again."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.address = folder, f"127.0.0.1:{port}"
        self.storage = folder / "data"
        self._config = folder / "config.yml"
        self._config.write_text(
            "version: 0.1\nstorage:\n"
            f"  filesystem:\n    rootdirectory: {self.storage}\n"
            f"http:\n  addr: {self.address}\n"
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.folder / "registry.log").open("a") as log:
            self._process = subprocess.Popen(
                ["docker-registry", "serve", str(self._config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=2):
                    return
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    self.kill()
                    msg = f"registry did not start; see {self.folder / 'registry.log'}"
                    raise AssertionError(msg) from None
                time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)

    def kill_during_upload(self, *, min_bytes: int, timeout: float) -> int:
        """Kill the registry once an upload in progress holds `min_bytes`; those bytes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # an upload's folder vanishes when it completes, also in the middle of the glob
            with contextlib.suppress(OSError):
                for data in self.storage.glob("docker/registry/v2/repositories/**/_uploads/*/data"):
                    if (size := data.stat().st_size) >= min_bytes:
                        self.kill()
                        return size
            time.sleep(0.002)
        msg = f"no upload reached {min_bytes} bytes within {timeout}s"
        raise AssertionError(msg)

    def blobs(self) -> set[str]:
        """Digests of the blobs the registry stores (what a push left behind), but the
        manifests, which it stores as blobs too."""
        root = self.storage / "docker/registry/v2/blobs/sha256"
        return {f"sha256:{p.parent.name}" for p in root.glob("*/*/data") if not _manifest(p)}

    def manifests_missing_blobs(self, repo: str) -> list[str]:
        """Every tag of `repo` whose manifest names a blob the registry lacks."""
        try:
            with urllib.request.urlopen(f"http://{self.address}/v2/{repo}/tags/list") as reply:
                tags = json.loads(reply.read()).get("tags") or []
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # 404: no manifest was ever stored in the repository
                raise
            tags = []
        have, broken = self.blobs(), []
        for tag in tags:
            document = self._document(repo, tag)
            # an index (the attestations' referrers tag): the manifests it lists
            manifests = [self._document(repo, m["digest"]) for m in document.get("manifests", [])]
            for manifest in manifests or [document]:
                named = [manifest["config"]["digest"]] + [la["digest"] for la in manifest["layers"]]
                broken += [f"{tag}: {d}" for d in named if d not in have]
        return broken

    def attached_blobs(self, repo: str, subject: str) -> set[str]:
        """The blobs of the artifacts attached to manifest `subject` (its provenance and
        SBOM), found as any client finds them here: under the referrers tag scheme's tag."""
        found = set()
        index = self._document(repo, f"sha256-{subject.removeprefix('sha256:')}")
        for entry in index.get("manifests") or []:
            artifact = self._document(repo, entry["digest"])
            found |= {artifact["config"]["digest"]} | {la["digest"] for la in artifact["layers"]}
        return found

    def _document(self, repo: str, reference: str) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://{self.address}/v2/{repo}/manifests/{reference}",
            headers={
                "Accept": "application/vnd.oci.image.index.v1+json, "
                "application/vnd.oci.image.manifest.v1+json"
            },
        )
        with urllib.request.urlopen(request) as reply:
            document: dict[str, Any] = json.loads(reply.read())
        return document


def _manifest(blob: Path) -> bool:
    if blob.stat().st_size > 1 << 16:
        return False
    try:
        document = json.loads(blob.read_bytes())
    except ValueError:
        return False
    return isinstance(document, dict) and "schemaVersion" in document


class Dockerd:
    """A Docker daemon of the test's own (its bridge, data and exec roots, socket), to kill
    with SIGKILL and start again on the same data, as a crash and a restart would. The host's
    daemon, which others use, is never touched."""

    BRIDGE, SUBNET = "sbx20br", "172.40.0.1/16"

    def __init__(self, folder: Path, *, data_size: str | None = None) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.data_size = data_size  # a tmpfs of that size holds the data root, to fill
        self.host = f"unix://{folder / 'docker.sock'}"
        self._process: subprocess.Popen[bytes] | None = None
        self._containerd: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if subprocess.run(["ip", "link", "show", self.BRIDGE], capture_output=True).returncode:
            for command in (
                ["ip", "link", "add", self.BRIDGE, "type", "bridge"],
                ["ip", "addr", "add", self.SUBNET, "dev", self.BRIDGE],
                ["ip", "link", "set", self.BRIDGE, "up"],
            ):
                subprocess.run(command, check=True, capture_output=True)
        if self.data_size and not self.data.is_mount():
            self.data.mkdir(exist_ok=True)
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={self.data_size}", "sbx20-data", self.data],
                check=True,
            )
        containerd = self.folder / "containerd.sock"
        if self._containerd is None:  # its own containerd, which outlives a killed dockerd
            with (self.folder / "containerd.log").open("a") as log:
                self._containerd = subprocess.Popen(
                    [
                        "containerd",
                        "--address", str(containerd),
                        "--root", str(self.folder / "containerd"),
                        "--state", str(self.folder / "containerd-state"),
                    ],
                    stdout=log,
                    stderr=log,
                )  # fmt: skip
        with (self.folder / "dockerd.log").open("a") as log:
            self._process = subprocess.Popen(
                [
                    "dockerd",
                    f"--containerd={containerd}",
                    "--data-root", str(self.data),
                    "--exec-root", str(self.folder / "exec"),
                    "-H", self.host,
                    "--pidfile", str(self.folder / "dockerd.pid"),
                    f"--bridge={self.BRIDGE}",
                ],
                stdout=log,
                stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while self.docker("info", check=False).returncode:
            if time.monotonic() > deadline or self._process.poll() is not None:
                msg = f"dockerd did not start; see {self.folder / 'dockerd.log'}"
                raise AssertionError(msg)
            time.sleep(0.3)

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=30)

    def leave_free(self, size: int) -> None:
        """Shrink the data root's tmpfs to what it holds now and `size` bytes more."""
        used = shutil.disk_usage(self.data).used
        self.resize(f"{(used + size) // 1024}k")

    def resize(self, size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.data)], check=True)

    def stop(self) -> None:
        """Stop the daemon, then its containerd, and unmount what they left mounted."""
        for process in (self._process, self._containerd):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=60)
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(f"{self.folder}/")), reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["docker", "-H", self.host, *args], capture_output=True, text=True, check=False
        )
        if check and done.returncode:
            msg = f"docker {' '.join(args)} failed: {done.stderr}"
            raise AssertionError(msg)
        return done
