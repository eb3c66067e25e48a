"""`sandbox ARGS` run in this process by typer's CliRunner: what a user sees, in milliseconds.

The app's own group turns a `BuilderError` into its message and exit code, so the result's
`exit_code`, `stdout` and `stderr` are those of the real command. Anything else raised is
not caught: the test fails with its traceback. `sandbox_process` starts the real entry point
instead, for the few tests where the process boundary is the point (exit codes of the real
process, what a no-op build imports).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from typer.testing import CliRunner, Result

from builder.cli.app import app


def sandbox(*args: str | Path, env: Mapping[str, str | None] | None = None) -> Result:
    """Run `sandbox *args`; `env` sets (or, given None, unsets) variables for the run only."""
    return CliRunner().invoke(app, [str(arg) for arg in args], env=env, catch_exceptions=False)


REPO = Path(__file__).resolve().parents[2]


def sandbox_process(
    *args: str | Path, python: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`sandbox *args` as a real process (`python [python...] -m builder`, what the `sandbox`
    script runs) on this checkout's code, without the caller's SANDBOX_CACHE_DIR."""
    env = {k: v for k, v in os.environ.items() if k != "SANDBOX_CACHE_DIR"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, *python, "-m", "builder", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
