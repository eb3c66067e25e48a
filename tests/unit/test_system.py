"""The system recipe (builder/kinds/system.py): setuid stripping, run by a real `find`, and
the image user and workdir steps, run by a real `sh` with the account tools stubbed."""

from __future__ import annotations

import hashlib
import stat
import subprocess
from pathlib import Path

import pytest

from builder.kinds.system import ARCHIVES, from_cached_debs, strip_setuid, user_and_workdir
from builder.model.fields import Fields
from builder.model.inputs import Pin, SystemInputs
from builder.model.typed import read_inputs


def test_strip_setuid_clears_every_bit_but_the_allowed_paths(tmp_path: Path) -> None:
    files = {name: tmp_path / name for name in ("passwd", "wall", "sudo", "odd[1]*", "plain")}
    for path in files.values():
        path.write_text("x")
    for name in ("passwd", "sudo", "odd[1]*"):
        files[name].chmod(0o4755)
    files["wall"].chmod(0o2755)
    allowed = [str(files["sudo"]), str(files["odd[1]*"])]

    script = strip_setuid(allowed).replace("find / ", f"find {tmp_path} ", 1)
    subprocess.run(["sh", "-ec", script], check=True)

    def special(name: str) -> int:
        return stat.S_IMODE(files[name].stat().st_mode) & 0o6000

    assert special("passwd") == 0
    assert special("wall") == 0
    assert special("sudo") == 0o4000
    assert special("odd[1]*") == 0o4000, "glob characters in an allowed path match literally"
    assert "'/x; rm -rf /'" in strip_setuid(["/x; rm -rf /"])


def _user_steps(inputs: dict[str, object], *, has: str = "") -> list[str]:
    """The commands the user/workdir part of the system step runs; `has` lists what getent
    finds in the base, as `passwd:name` and `group:name`."""
    system = read_inputs(SystemInputs, Fields({"request": [], "packages": [], **inputs}, "system"))
    stubs = f"""getent() {{ case " {has} " in *" $1:$2 "*) return 0;; esac; return 2; }}
useradd() {{ echo "useradd $*"; }}
id() {{ [ "$1" = -u ] && echo 1001 || echo 1002; }}
mkdir() {{ echo "mkdir $*"; }}
chown() {{ echo "chown $*"; }}
chmod() {{ echo "chmod $*"; }}
"""
    done = subprocess.run(
        ["sh", "-ec", stubs + user_and_workdir(system)], capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


def test_the_spec_user_is_made_at_its_uid_and_owns_the_workdir() -> None:
    steps = _user_steps({"user": "agent", "uid": 1000, "workdir": "/workspace"})

    assert steps == [
        "useradd --uid 1000 --user-group --create-home --shell /bin/bash agent",
        "chmod 1777 /home/agent",
        "mkdir -p /workspace",
        "chown 1001:1002 /workspace",
    ]


def test_a_user_the_base_has_is_not_made_again_and_its_group_is_joined() -> None:
    assert _user_steps({"user": "node", "uid": 1000, "workdir": ""}, has="passwd:node") == []
    steps = _user_steps({"user": "agent", "uid": 1001, "workdir": ""}, has="group:agent")
    assert steps == [
        "useradd --uid 1001 --gid agent --create-home --shell /bin/bash agent",
        "chmod 1777 /home/agent",
    ]


def test_the_bases_user_is_left_alone_and_owns_a_workdir_of_ours() -> None:
    steps = _user_steps({"user": "", "workdir": "/src", "owner": "1000:1000"})

    assert steps == ["mkdir -p /src", "chown 1000:1000 /src"]
    assert _user_steps({"user": "", "workdir": ""}) == []


def _install_from(archives: Path, pins: list[Pin], tmp_path: Path) -> str:
    """Run the cached-debs step with a real `sh` on `archives`; dpkg and apt-get stubbed.
    Returns what the step did: apt-get's arguments, or the other way's marker."""
    stubs = tmp_path / "bin"
    stubs.mkdir(parents=True)
    for name, body in (("dpkg", "echo amd64"), ("apt-get", 'echo "apt-get $*" > "$CALLS"')):
        (stubs / name).write_text(f"#!/bin/sh\n{body}\n")
        (stubs / name).chmod(0o755)
    calls = tmp_path / "calls"
    script = from_cached_debs(pins, otherwise='echo by-pins > "$CALLS"')
    script = script.replace("/tmp/", f"{tmp_path}/").replace(ARCHIVES, str(archives))
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "CALLS": str(calls)}
    subprocess.run(["sh", "-ec", script], check=True, env=env, capture_output=True)
    return calls.read_text().strip()


def _deb(archives: Path, filename: str, body: bytes) -> Pin:
    name, version, _ = filename.split("_")
    (archives / filename).write_bytes(body)
    sha = hashlib.sha256(body).hexdigest()
    return Pin(name=name, version=version.replace("%3a", ":"), sha256=sha)


@pytest.fixture
def archives(tmp_path: Path) -> Path:
    """apt's download cache, as the system step sees it mounted."""
    folder = tmp_path / "archives"
    folder.mkdir()
    return folder


def test_the_locked_debs_are_installed_from_the_cache_when_every_one_is_there(
    archives: Path, tmp_path: Path
) -> None:
    git = _deb(archives, "git_1%3a2.39.5-0+deb12u3_amd64.deb", b"git")
    man = _deb(archives, "git-man_1%3a2.39.5-0+deb12u3_all.deb", b"man")
    _deb(archives, "git_1%3a2.39.5-0+deb12u3_arm64.deb", b"another platform's")

    done = _install_from(archives, [git, man], tmp_path)

    assert done.startswith("apt-get install")
    assert f"Dir::State::Lists={tmp_path}/sandbox-no-lists" in done, "no index is read"
    assert f"{archives}/git_1%3a2.39.5-0+deb12u3_amd64.deb" in done
    assert f"{archives}/git-man_1%3a2.39.5-0+deb12u3_all.deb" in done
    assert "arm64" not in done


def test_a_missing_or_altered_deb_or_a_pin_without_sha256_installs_by_pins(
    archives: Path, tmp_path: Path
) -> None:
    jq = _deb(archives, "jq_1.6-2.1_amd64.deb", b"jq")
    absent = Pin(name="ripgrep", version="13.0.0-4", sha256="0" * 64)
    altered = Pin(name="jq", version="1.6-2.1", sha256="0" * 64)

    for n, pins in enumerate(([jq, absent], [altered])):
        assert _install_from(archives, pins, tmp_path / str(n)) == "by-pins"
    for pins in (
        [Pin(name="jq", version="1.6-2.1")],
        [Pin(name="libc6:i386", version="2.36", sha256="0" * 64)],
    ):
        assert from_cached_debs(pins, otherwise="by-pins") == "by-pins"
