"""The `sandbox` entry point: which command lines skip typer (exactly the plain `sandbox build`
ones), and the exit codes and messages the real process gives on both paths.

The rest of the CLI is tested in-process (tests/unit/clirun.py); here the process boundary
is the point, so these few start `python -m builder` (what the `sandbox` script runs).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.actions.buildrun import BuildRequest
from builder.cli.entry import quick_build
from tests.unit.clirun import sandbox_process


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


def test_the_progress_mode_of_a_plain_build_is_read(tmp_path: Path) -> None:
    request = quick_build(["-f", str(tmp_path / "s.toml"), "build", "--progress", "plain"])

    assert request is not None
    assert request.progress == "plain"


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
        ["build", "--progress", "fancy"],
        ["build", "-j"],
        ["-f", "build"],
        ["build", "build"],
        ["overlay", "show"],
    ],
)
def test_anything_else_goes_to_typer(argv: list[str]) -> None:
    assert quick_build(argv) is None


@pytest.mark.parametrize("command", ["lock", "build"], ids=["through typer", "quick build"])
def test_an_error_is_one_line_and_its_exit_code(tmp_path: Path, command: str) -> None:
    spec = tmp_path / "sandbox.toml"
    spec.write_text('[image]\nname = "acme/sandbox"\n')

    done = sandbox_process("-f", spec, command)

    assert done.returncode == 2, done.stderr
    assert done.stderr == f"error: {spec}: `base`: missing table. Add a [base] table\n"
    assert done.stdout == ""
