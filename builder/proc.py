"""Running host programs (debootstrap, skopeo, ...) through one helper.

It checks the program exists, echoes the command when verbose, and turns a failure into a
`BuilderError` of the caller's choosing carrying the tail of stderr.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from builder.errors import BuilderError

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
) -> str:
    """Run `argv`, return its stdout; on failure raise `error` saying `what` failed."""
    found = shutil.which(argv[0], path=_SEARCHED)
    if found is None:
        hint = install_hint or f"apt-get install -y {argv[0]}"
        msg = f"{what}: `{argv[0]}` is not installed. Install it: {hint}"
        raise error(msg)
    argv = [found, *argv[1:]]
    if VERBOSE:
        print("+ " + shlex.join(argv), file=sys.stderr)
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {shlex.join(argv)}\n{done.stdout}\n{done.stderr}")
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        where = f" (full log: {log})" if log else ""
        msg = f"{what} failed with exit {done.returncode}{where}:\n{tail}"
        raise error(msg)
    return done.stdout
