"""Podman (issue 16): Debian 12's podman 4.3, `podman system service` on a unix socket.

The service is started here with a configuration of its own (CONTAINERS_CONF and
CONTAINERS_STORAGE_CONF; nothing under /etc/containers is touched), storage and locks in a
temp folder, runc (crun refuses this machine's hybrid cgroups), the rlimits this machine's
bounding set allows (podman raises nofile/nproc by default, which fails without
CAP_SYS_RESOURCE), and a CNI bridge of its own (`sbxpodman0`, 172.56.0.0/16), so the host
daemon's docker0 and iptables rules are left as they are.

The same lock built on the host's Docker Engine and on Podman gives the same layers and the
same image, and `sandbox check` runs there (its confined container, its tmpfs HOME).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Project, docker

pytestmark = pytest.mark.docker

BRIDGE = "sbxpodman0"
SUBNET = "172.56.0.0/16"

SPEC = """
[image]
name = "sandbox-test/podman"

[base]
image = "{base}"

[system]
packages = ["jq"]  # small, and dpkg makes folders: engines record those differently

[runtimes]
node = {{ version = "22", provider = "pypi" }}

[tools]
npm = ["semver@7.6.3"]
"""

CONTAINERS_CONF = """
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[network]
network_backend = "cni"
network_config_dir = "{root}/net"
default_network = "sandbox-test"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{root}/events.log"
lock_type = "file"
tmp_dir = "{root}/tmp"
"""

STORAGE_CONF = """
[storage]
driver = "overlay"
graphroot = "{root}/storage"
runroot = "{root}/run"
"""

NETWORK = {
    "cniVersion": "0.4.0",
    "name": "sandbox-test",
    "plugins": [
        {
            "type": "bridge",
            "bridge": BRIDGE,
            "isGateway": True,
            "ipMasq": True,
            "ipam": {
                "type": "host-local",
                "routes": [{"dst": "0.0.0.0/0"}],
                "ranges": [[{"subnet": SUBNET, "gateway": SUBNET.replace("0/16", "1")}]],
            },
        },
        {"type": "firewall"},
    ],
}


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DOCKER_HOST of a Podman system service of our own."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed; run ./scripts/host-setup.sh (make test does)")
    root = tmp_path_factory.mktemp("podman")
    for folder in ("net", "tmp"):
        (root / folder).mkdir()
    (root / "containers.conf").write_text(CONTAINERS_CONF.format(root=root))
    (root / "storage.conf").write_text(STORAGE_CONF.format(root=root))
    (root / "net" / "sandbox-test.conflist").write_text(json.dumps(NETWORK))
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(root / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
    }
    host = f"unix://{root / 'podman.sock'}"
    with (root / "service.log").open("w") as log:
        service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", host], stdout=log, stderr=log, env=env
        )
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "-H", host, "version"], capture_output=True).returncode:
            if time.monotonic() > deadline or service.poll() is not None:
                pytest.fail(f"podman system service did not start; see {root / 'service.log'}")
            time.sleep(0.5)
        yield host
    finally:
        service.terminate()
        service.wait(timeout=30)
        subprocess.run(["podman", "system", "reset", "--force"], env=env, capture_output=True)
        subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True)


def test_podman_builds_the_layers_docker_builds_and_the_image_passes_check(
    project: Project, base_image: str, podman: str, tmp_path: Path
) -> None:
    project.write(SPEC.format(base=base_image))
    project.ok("lock")
    on_docker = json.loads(project.ok("build", "--json").out)
    saved = subprocess.run(["docker", "save", base_image], capture_output=True, check=True)
    subprocess.run(["docker", "-H", podman, "load"], input=saved.stdout, check=True)
    # Its own cache and store, so every node is built on Podman (downloads stay shared).
    on_podman_env = {
        "DOCKER_HOST": podman,
        "SANDBOX_CACHE_DIR": str(tmp_path / "cache"),
        "SANDBOX_STORE_DIR": str(tmp_path / "store"),
    }

    built = project.sandbox("build", "--json", env=on_podman_env)
    assert built.code == 0, built.err
    checked = project.sandbox("check", "--json", env=on_podman_env)

    on_podman = json.loads(built.out)
    assert [n["status"] for n in on_podman["nodes"]] == ["built"] * 4
    assert {n["name"]: n["layer"] for n in on_podman["nodes"]} == {
        n["name"]: n["layer"] for n in on_docker["nodes"]
    }
    assert on_podman["image"]["id"] == on_docker["image"]["id"]
    # check ran there; git is not in this image (kept lean), the one failure it names.
    results = {r["check"]: r for r in json.loads(checked.out)}
    assert results["tools.npm semver"]["ok"], results
    assert results["runtime.node"]["ok"], results
    assert [name for name, r in results.items() if not r["ok"]] == ["git"], results
    assert checked.code == 5
    assert docker("version", "--format", "{{.Server.Version}}")  # the host daemon still answers
    assert "docker0" in subprocess.run(["ip", "link"], capture_output=True, text=True).stdout
