"""Whether another platform builds here: what binfmt_misc says, read from a folder laid out
like /proc/sys/fs/binfmt_misc."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.core.errors import BuildError
from builder.engine.emulation import emulation, require_emulation

_ENTRY = """{state}
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: {flags}
offset 0
magic 7f454c460201010000000000000000000200b700
"""


def _binfmt(tmp_path: Path, *, state: str = "enabled", flags: str = "PF") -> Path:
    (tmp_path / "status").write_text("enabled\n")
    (tmp_path / "qemu-aarch64").write_text(_ENTRY.format(state=state, flags=flags))
    return tmp_path


def test_registered_with_the_fix_binary_flag_is_available(tmp_path: Path) -> None:
    found = emulation("linux/arm64", _binfmt(tmp_path))
    assert found.available
    assert "aarch64-binfmt-P" in found.detail


@pytest.mark.parametrize(
    ("state", "flags", "said"),
    [("disabled", "PF", "update-binfmts --enable"), ("enabled", "P", "F flag")],
)
def test_disabled_or_unusable_in_containers_says_why(
    tmp_path: Path, state: str, flags: str, said: str
) -> None:
    found = emulation("linux/arm64", _binfmt(tmp_path, state=state, flags=flags))
    assert not found.available
    assert said in found.detail


def test_nothing_registered_or_not_mounted(tmp_path: Path) -> None:
    assert emulation("linux/arm64", tmp_path).detail == "binfmt_misc is not mounted"
    (tmp_path / "status").write_text("enabled\n")
    assert emulation("linux/arm64", tmp_path).detail == "no qemu-aarch64 registered"


def test_build_without_emulation_is_refused_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("builder.engine.emulation.BINFMT", tmp_path)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with pytest.raises(BuildError) as caught:
        require_emulation("linux/arm64")
    assert "qemu-user-static binfmt-support" in str(caught.value)
    assert caught.value.exit_code == 5
    monkeypatch.setenv("DOCKER_HOST", "tcp://arm64-builder:2376")
    require_emulation("linux/arm64")  # a remote engine's kernel decides for itself
