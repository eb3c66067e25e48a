"""Running host programs (debootstrap, skopeo, ...) through one helper.

It checks the program exists, echoes the command when verbose, stops it at the step limit
(limits.py), and turns a failure into a `BuilderError` of the caller's choosing carrying the
tail of stderr. With a log, stderr goes to it as the program writes (so the progress
heartbeat can tell a step that has gone quiet).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from builder.core import limits
from builder.core.errors import BuilderError

VERBOSE = False
# A user who is not root rarely has the sbin folders on PATH, where debootstrap lives.
_SEARCHED = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])


def run(
    argv: list[str],
    *,
    error: type[BuilderError],
    what: str,
    log: Path | None = None,
    install_hint: str = "",
    env: Mapping[str, str] | None = None,
    hint: str = "",
) -> str:
    """Run `argv`, return its stdout; on failure raise `error` saying `what` failed (and
    `hint`, what to check)."""
    found = shutil.which(argv[0], path=_SEARCHED)
    if found is None:
        install = install_hint or f"apt-get install -y {argv[0]}"
        msg = f"{what}: `{argv[0]}` is not installed. Install it: {install}"
        raise error(msg)
    argv = [found, *argv[1:]]
    if VERBOSE:
        print("+ " + shlex.join(argv), file=sys.stderr)
    limit = limits.step_timeout()
    header = f"$ {shlex.join(argv)}\n" if log is not None else ""
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(header)
    with (
        log.open("a+") if log is not None else tempfile.TemporaryFile("w+") as err,
        subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # so the program's own children stop with it
        ) as child,
    ):
        try:
            out, _ = child.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            raise error(limits.stalled(what, seconds=limit, log=log)) from None
        err.seek(len(header.encode()))
        stderr = err.read()
        err.write(out)
    if child.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        where = f" (full log: {log})" if log else ""
        msg = f"{what} failed with exit {child.returncode}{where}:\n{tail}"
        msg += f"\n{hint}" if hint else ""
        raise error(msg)
    return out
