"""The login shells' profile script and its layer (builder/image/profile.py).

The script is run by the host's dash and bash the way Debian's /etc/profile runs it: after
PATH was reset to Debian's default, with nothing else of the image's Env in the environment
(`env -i`, as `su -` leaves it). What the shell then prints is what a login shell would see.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from builder.image.profile import (
    PROFILE,
    is_profile_layer,
    profile_layer,
    profile_script,
    profile_tar,
)
from builder.store.cache import Cache

DEBIAN_USER_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"  # /etc/profile's
IMAGE_PATH = "/opt/sandbox/tools/pip/bin:/opt/sandbox/runtime/node/bin:/usr/local/bin:/usr/bin:/bin"
SHELLS = ["dash", "bash"]


def _login(shell: str, script: Path, command: str, **env: str) -> str:
    """`command`'s output in `shell` after it sourced `script`, as /etc/profile does."""
    settings = [f"PATH={DEBIAN_USER_PATH}", *(f"{k}={v}" for k, v in env.items())]
    done = subprocess.run(
        ["env", "-i", *settings, shell, "-c", f". {script}; {command}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert done.stderr == ""
    return done.stdout


def _script(tmp_path: Path, env: dict[str, str]) -> Path:
    path = tmp_path / "sandbox-builder.sh"
    path.write_bytes(profile_script(env))
    return path


@pytest.mark.parametrize("shell", SHELLS)
def test_the_image_path_comes_first_and_entries_only_the_shell_had_follow(
    tmp_path: Path, shell: str
) -> None:
    script = _script(tmp_path, {"PATH": IMAGE_PATH})

    path = _login(shell, script, 'printf %s "$PATH"')

    assert path == f"{IMAGE_PATH}:/usr/local/games:/usr/games"


TRICKY = {
    "PATH": "/opt/with space/bin:/usr/bin",
    "SPACES": "a  b\tc",
    "DOLLAR": "$HOME and ${PATH} and $(id -u) and `id -u`",
    "QUOTES": 'it\'s "quoted" \\ back',
    "NEWLINE": "one\ntwo",
    "EMPTY": "",
    "NODE_PATH": "/opt/sandbox/tools/npm/lib/node_modules",
}


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("name", sorted(set(TRICKY) - {"PATH"}))
def test_every_value_arrives_exactly_as_the_config_holds_it(
    tmp_path: Path, shell: str, name: str
) -> None:
    script = _script(tmp_path, TRICKY)

    shown = _login(shell, script, f'printf "%s|%s" "${{{name}+set}}" "${name}"')

    assert shown == f"set|{TRICKY[name]}"


@pytest.mark.parametrize("shell", SHELLS)
def test_a_path_with_a_space_still_finds_its_programs(tmp_path: Path, shell: str) -> None:
    tools = tmp_path / "with space" / "bin"
    tools.mkdir(parents=True)
    (tools / "sometool").write_text("#!/bin/sh\necho found\n")
    (tools / "sometool").chmod(0o755)
    script = _script(tmp_path, {"PATH": f"{tools}:/usr/bin:/bin"})

    assert _login(shell, script, "sometool") == "found\n"


@pytest.mark.parametrize("shell", SHELLS)
def test_a_value_the_container_already_has_is_kept(tmp_path: Path, shell: str) -> None:
    """`docker run -e LANG=...` (or Risoluto's HOME) wins over the image's default."""
    script = _script(tmp_path, {"PATH": IMAGE_PATH, "LANG": "C.UTF-8", "HOME": "/root"})

    shown = _login(shell, script, 'printf "%s %s" "$LANG" "$HOME"', LANG="de_DE.UTF-8", HOME="/h")

    assert shown == "de_DE.UTF-8 /h"


@pytest.mark.parametrize("shell", SHELLS)
def test_the_variables_are_exported_to_programs_the_shell_starts(
    tmp_path: Path, shell: str
) -> None:
    script = _script(tmp_path, {"PATH": IMAGE_PATH, "NODE_PATH": "/opt/n"})

    shown = _login(shell, script, "env")

    assert "NODE_PATH=/opt/n\n" in shown
    assert f"PATH={IMAGE_PATH}:/usr/local/games:/usr/games\n" in shown
    assert "_sandbox" not in shown  # its helper variables are gone


def test_a_name_no_shell_can_export_is_left_out() -> None:
    script = profile_script({"PATH": "/usr/bin", "odd.name": "x", "OK_1": "y"}).decode()

    assert "odd.name" not in script
    assert "OK_1='y'" in script


def test_the_same_env_gives_the_same_bytes_whatever_its_order() -> None:
    forward = {"PATH": "/usr/bin", "A": "1", "B": "2"}
    backward = dict(reversed(list(forward.items())))

    assert profile_tar(forward, epoch=1700000000) == profile_tar(backward, epoch=1700000000)
    assert profile_tar(forward, epoch=1700000000) != profile_tar(
        {**forward, "B": "3"}, epoch=1700000000
    )


def test_the_layer_holds_the_script_with_fixed_metadata(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    env = {"PATH": IMAGE_PATH}

    layer = profile_layer(env, epoch=1700000000, cache=cache)

    data = cache.layer_path(layer.diff_id).read_bytes()
    assert layer.size == len(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["etc/profile.d", PROFILE]
        assert [(m.mode, m.uid, m.gid, m.mtime) for m in members] == [
            (0o755, 0, 0, 1700000000),
            (0o644, 0, 0, 1700000000),
        ]
        script = tar.extractfile(PROFILE)
        assert script is not None
        assert script.read() == profile_script(env)


def test_the_profile_layer_is_told_from_any_other_layer(tmp_path: Path) -> None:
    """`sandbox check` names it `profile` where it names a node's layer by its node."""
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    layer = profile_layer({"PATH": IMAGE_PATH}, epoch=0, cache=cache)
    other = tmp_path / "other.tar"
    with tarfile.open(other, "w") as tar:
        for name in ("etc/profile.d", PROFILE, "etc/passwd"):
            tar.addfile(tarfile.TarInfo(name))

    assert is_profile_layer(cache.layer_path(layer.diff_id))
    assert not is_profile_layer(other)
    assert not is_profile_layer(tmp_path / "missing.tar")
