"""Which command lines skip typer: exactly the plain `sandbox build` ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.buildrun import BuildRequest
from builder.entry import quick_build


@pytest.fixture(autouse=True)
def _no_cache_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANDBOX_CACHE_DIR", raising=False)


def test_a_plain_build_is_quick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert quick_build(["build"]) == BuildRequest(spec_file=tmp_path / "sandbox.toml")


def test_options_of_a_plain_build_are_read(tmp_path: Path) -> None:
    argv = ["-f", str(tmp_path / "s.toml"), f"--cache-dir={tmp_path}/c", "build", "--json"]
    assert quick_build([*argv, "-j", "3"]) == BuildRequest(
        spec_file=tmp_path / "s.toml", cache_dir=tmp_path / "c", as_json=True, jobs=3
    )


def test_the_cache_dir_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "env-cache"))
    request = quick_build(["-f", str(tmp_path / "s.toml"), "build"])
    assert request is not None
    assert request.cache_dir == tmp_path / "env-cache"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["lock"],
        ["build", "--help"],
        ["--help", "build"],
        ["build", "--push"],
        ["build", "--explain"],
        ["build", "--apply", "http://x"],
        ["-v", "build"],
        ["build", "-f", "x.toml"],  # a global option after the command: typer explains
        ["build", "--jobs", "0"],
        ["build", "--jobs", "many"],
        ["build", "-j"],
        ["-f", "build"],
        ["build", "build"],
        ["overlay", "show"],
    ],
)
def test_anything_else_goes_to_typer(argv: list[str]) -> None:
    assert quick_build(argv) is None
