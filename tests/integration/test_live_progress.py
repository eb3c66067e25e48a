"""`sandbox build` on a real pseudo-terminal draws its live table; through a pipe it prints
plain lines; stdout (`--json`) is the same either way (issue 30)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Project
from tests.unit.terminal import run_in_pty

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
SPEC = """
[image]
name = "sandbox-test/live"
env = {{ RUN = "{run}" }}

[base]
image = "{base}"
"""
HIDE_CURSOR = "\x1b[?25l"  # what a live display does first on a terminal


def test_a_terminal_shows_the_live_table_and_a_pipe_plain_lines(
    project: Project, base_image: str
) -> None:
    project.write(SPEC.format(base=base_image, run="terminal"))
    project.ok("lock")
    env = {
        **{k: v for k, v in os.environ.items() if k != "NO_COLOR"},
        "PYTHONPATH": str(REPO),
        "SANDBOX_CACHE_DIR": str(project.cache),
        "TERM": "xterm-256color",
    }

    shown = run_in_pty(
        [sys.executable, "-m", "builder", "-f", str(project.spec), "build", "--json"], env=env
    )

    assert shown.code == 0, shown.terminal
    assert HIDE_CURSOR in shown.terminal
    assert re.search(r"\x1b\[3\dm(built|cached|pulled)", shown.terminal), "coloured rows"
    assert "  building  " not in shown.terminal, "no plain lines on a terminal"
    assert "  queued    " not in shown.terminal
    assert " nodes (" in shown.terminal, "the summary follows the table"
    on_terminal = json.loads(shown.stdout)

    project.write(SPEC.format(base=base_image, run="pipe"))  # another image: a real build
    piped = project.sandbox("build", "--json")

    assert piped.code == 0, piped.err
    assert "\x1b[" not in piped.err
    assert "  cached    base" in piped.err
    through_pipe = json.loads(piped.out)
    assert through_pipe.keys() == on_terminal.keys()
    assert [n["name"] for n in through_pipe["nodes"]] == [n["name"] for n in on_terminal["nodes"]]
