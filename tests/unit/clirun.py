"""`sandbox ARGS` run in this process by typer's CliRunner: what a user sees, in milliseconds.

The app's own group turns a `BuilderError` into its message and exit code, so the result's
`exit_code`, `stdout` and `stderr` are those of the real command. Anything else raised is
not caught: the test fails with its traceback. A few tests still start the real entry point
in a subprocess where the process boundary is the point (tests/unit/test_entry.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from typer.testing import CliRunner, Result

from builder.cli import app


def sandbox(*args: str | Path, env: Mapping[str, str | None] | None = None) -> Result:
    """Run `sandbox *args`; `env` sets (or, given None, unsets) variables for the run only."""
    return CliRunner().invoke(app, [str(arg) for arg in args], env=env, catch_exceptions=False)
