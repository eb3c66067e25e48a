"""A command run with its stderr on a real pseudo-terminal (and stdout on a pipe), as a person
runs `sandbox build` in a terminal: what it drew there, byte for byte, and what it printed."""

from __future__ import annotations

import os
import pty
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TerminalRun:
    code: int
    terminal: str  # everything written to the terminal (stderr), escapes included
    stdout: str


def run_in_pty(
    argv: list[str], *, env: Mapping[str, str], cwd: Path | None = None, timeout: float = 600
) -> TerminalRun:
    leader, follower = pty.openpty()
    with subprocess.Popen(
        argv,
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=follower,
        env=dict(env),
        cwd=cwd,
        close_fds=True,
    ) as process:
        os.close(follower)
        drawn = bytearray()
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the follower side is closed
                break
            if not chunk:
                break
            drawn += chunk
        os.close(leader)
        assert process.stdout is not None
        stdout = process.stdout.read().decode()
        code = process.wait(timeout=timeout)
    return TerminalRun(code=code, terminal=drawn.decode(errors="replace"), stdout=stdout)
