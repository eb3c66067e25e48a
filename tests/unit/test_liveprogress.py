"""The build's progress (builder/core/liveprogress.py): a table redrawn in place when stderr is
a terminal, plain lines in a pipe or with `plain`, no colour with NO_COLOR. Driven here the way
the executor drives it, in a child process whose stderr is a real pseudo-terminal."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builder.core.liveprogress import LiveProgress, progress_for
from builder.core.progress import Progress
from tests.unit.terminal import run_in_pty

REPO = Path(__file__).resolve().parents[2]

# A build of two nodes as the executor reports it, then the summary.
DRIVER = """
import sys, time
from types import SimpleNamespace as NS
from builder.core.liveprogress import progress_for

layer = NS(diff_id="sha256:" + "a" * 64, size=2_500_000)
entry = NS(layers=[layer])
progress = progress_for(sys.argv[1])
with progress:
    progress.queued("base", [])
    progress.queued("tools.npm", ["base"])
    progress.start("base")
    time.sleep(0.6)
    progress.say("  pushing   somewhere ...")
    progress.done("base", "built", 0.6, entry)
    progress.start("tools.npm")
    time.sleep(0.6)
    progress.done("tools.npm", "pulled", 0.6, entry)
outcomes = [NS(name=n, status=s, seconds=0.6, entry=entry) for n, s in
            [("base", "built"), ("tools.npm", "pulled")]]
progress.summary(outcomes, 1.2)
"""
CURSOR_UP = "\x1b[1A"
COLOUR = "\x1b[32m"  # green: a built row


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "TERM"}}
    return {**env, "PYTHONPATH": str(REPO), "TERM": "xterm-256color", **extra}


def test_a_terminal_gets_a_table_redrawn_in_place() -> None:
    run = run_in_pty([sys.executable, "-c", DRIVER, "auto"], env=_env())

    assert run.code == 0, run.terminal
    assert CURSOR_UP in run.terminal, "rows are redrawn, not appended"
    assert COLOUR in run.terminal
    assert "pulled" in run.terminal
    assert "2.5 MB" in run.terminal
    assert "after base" in run.terminal
    assert "pushing   somewhere ..." in run.terminal
    assert "  building  base ..." not in run.terminal, "no plain lines on a terminal"
    assert run.terminal.rstrip().endswith("2 nodes (1 built, 1 pulled) in 1.2s")


def test_no_color_draws_the_table_without_colour() -> None:
    run = run_in_pty([sys.executable, "-c", DRIVER, "auto"], env=_env(NO_COLOR="1"))

    assert run.code == 0, run.terminal
    assert CURSOR_UP in run.terminal
    assert COLOUR not in run.terminal
    assert "\x1b[33m" not in run.terminal  # yellow: a building row


@pytest.mark.parametrize("how", ["plain on a terminal", "TERM=dumb", "a pipe"])
def test_plain_lines_elsewhere(how: str) -> None:
    argv = [sys.executable, "-c", DRIVER, "plain" if how.startswith("plain") else "auto"]
    if how == "a pipe":
        done = subprocess.run(argv, env=_env(), capture_output=True, text=True, check=False)
        code, shown = done.returncode, done.stderr
    else:
        env = _env(TERM="dumb") if how == "TERM=dumb" else _env()
        run = run_in_pty(argv, env=env)
        code, shown = run.code, run.terminal.replace("\r\n", "\n")

    assert code == 0, shown
    assert "\x1b[" not in shown
    assert "  building  base ...\n" in shown
    assert "  queued    tools.npm (after base)\n" in shown


def test_the_modes_pick_the_view() -> None:
    stream = io.StringIO()

    assert type(progress_for("plain", stream)) is Progress
    assert type(progress_for("auto", stream)) is Progress, "a StringIO is no terminal"
    assert isinstance(progress_for("tty", stream), LiveProgress)


def test_a_quiet_step_says_for_how_long_and_where_its_log_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat of the plain lines, as the row's note."""
    monkeypatch.setenv("COLUMNS", "300")  # the whole path on one line
    log = tmp_path / "base.log"
    stream = io.StringIO()
    progress = LiveProgress(stream, heartbeat=0.2)
    with progress:
        log.write_text("started\n")
        progress.start("base", log)
        time.sleep(0.8)

    drawn = stream.getvalue()
    assert f"no output for 0s (log: {log})" in drawn
    assert "building" in drawn
