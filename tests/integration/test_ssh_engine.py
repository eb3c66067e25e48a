"""An engine reached over ssh:// (issue 16): `DOCKER_HOST=ssh://user@host`, as the Docker CLI.

The test runs its own sshd on 127.0.0.1 (a host key, an authorized key, nothing else: no
password, no PAM) in front of this machine's Docker 20.10, and gives the client an `ssh`
that reads the test's ssh_config (its key and known_hosts): the tool shells out to `ssh`
and runs `docker system dial-stdio` on the far side, as the Docker CLI does. Lock, build,
the image it gives run, a second build with nothing to do, and check, all through ssh;
an ssh host nobody answers on is exit 9 naming it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Project, _free_port, docker

pytestmark = pytest.mark.docker

SSHD = Path("/usr/sbin/sshd")

SPEC = """
[image]
name = "sandbox-test/ssh"

[base]
image = "{base}"

[system]
packages = ["git"]
"""


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@pytest.fixture(scope="module")
def ssh_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment of a client whose DOCKER_HOST is ssh:// to this machine's engine."""
    if not SSHD.exists():
        pytest.fail(f"{SSHD} missing: run ./scripts/host-setup.sh", pytrace=False)
    work = tmp_path_factory.mktemp("ssh")
    port = _free_port()
    _keygen(work / "host_key")
    _keygen(work / "id")
    (work / "authorized_keys").write_text((work / "id.pub").read_text())
    (work / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {work}/host_key\n"
        f"AuthorizedKeysFile {work}/authorized_keys\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        f"StrictModes no\nPidFile {work}/sshd.pid\n"
    )
    host_key = (work / "host_key.pub").read_text().strip()
    (work / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key}\n")
    (work / "ssh_config").write_text(
        f"Host *\n  IdentityFile {work}/id\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {work}/known_hosts\n  StrictHostKeyChecking yes\n  BatchMode yes\n"
    )
    bin_dir = work / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {work}/ssh_config "$@"\n')
    (bin_dir / "ssh").chmod(0o755)
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
    log = (work / "sshd.log").open("w")
    sshd = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(work / "sshd_config")], stdout=log, stderr=log
    )
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            pytest.fail(f"sshd did not listen: {(work / 'sshd.log').read_text()}")
        yield {
            "DOCKER_HOST": f"ssh://root@127.0.0.1:{port}",
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
        }
    finally:
        sshd.terminate()
        sshd.wait(timeout=30)
        log.close()


def test_lock_build_and_check_over_ssh(
    project: Project, base_image: str, ssh_env: dict[str, str]
) -> None:
    project.write(SPEC.format(base=base_image))
    locked = project.sandbox("lock", env=ssh_env)
    assert locked.code == 0, locked.err
    built = project.sandbox("build", "--json", env=ssh_env)
    assert built.code == 0, built.err
    result = json.loads(built.out)
    assert {n["name"]: n["status"] for n in result["nodes"]}["system"] in ("built", "cached")
    ref = result["image"]["ref"]
    assert docker("run", "--rm", ref, "git", "--version").startswith("git version 2.")

    again = project.sandbox("build", "--json", env=ssh_env)
    assert again.code == 0, again.err
    replay = json.loads(again.out)
    assert {n["status"] for n in replay["nodes"]} == {"cached"}
    assert replay["image"]["id"] == result["image"]["id"]

    checked = project.sandbox("check", env=ssh_env)
    assert checked.code == 0, checked.err


def test_an_ssh_host_nobody_answers_is_exit_9_naming_it(
    project: Project, ssh_env: dict[str, str]
) -> None:
    project.write(SPEC.format(base="debian:bookworm"))
    nobody = f"ssh://root@127.0.0.1:{_free_port()}"
    done = project.sandbox("lock", env={**ssh_env, "DOCKER_HOST": nobody})
    assert done.code == 9, done.err
    assert nobody in done.err
    assert "docker version` works" in done.err
    assert "Traceback" not in done.err
