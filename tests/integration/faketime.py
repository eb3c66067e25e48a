"""`python -m tests.integration.faketime OFFSET SANDBOX-ARGS...`: the sandbox CLI with the
clock of everything that writes a layer moved by OFFSET (libfaketime's syntax: "+3d").

Issue 32's any-day test builds with it, to see tomorrow's build today. Debian's libfaketime is
preloaded, through the real code paths, into:
- debootstrap, and its maintainer scripts run in the new root (pwconv writes /etc/shadow
  there): the library is put at its own path inside the root before debootstrap starts, so
  the chrooted programs load it too, and removed before the tree is packed;
- every step container (the system layer's apt-get and useradd): the library mounted
  read-only under /tmp, which no layer keeps.
The engine, the mirror and the packing are the real ones; only the clock they read moves.
File times read back (stat) are left as they are (NO_FAKE_STAT), as on a real later day:
faked, they leaked into the links update-alternatives makes, which no real day does.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from builder.core import proc
from builder.engine.containers import Containers
from builder.engine.interface import Mount, RunResult

IN_CONTAINER = "/tmp/sandbox-faketime"  # a scratch path: no layer keeps it


def library() -> Path:
    """The host's libfaketime (apt-get install libfaketime)."""
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    if not found:
        msg = "libfaketime is not installed: apt-get install -y libfaketime"
        raise SystemExit(msg)
    return found[0]


def clock(offset: str) -> dict[str, str]:
    """libfaketime's settings: the clock moved by `offset`, file times as they are."""
    return {"FAKETIME": offset, "NO_FAKE_STAT": "1"}


def moved(offset: str) -> None:
    """Preload libfaketime with FAKETIME=`offset` into debootstrap and every step container."""
    lib = library()
    real_run, real_proc_run = Containers.run, proc.run

    def run(
        self: Containers, *, env: Mapping[str, str], mounts: list[Mount], **kw: Any
    ) -> RunResult:
        env = {**env, **clock(offset), "LD_PRELOAD": f"{IN_CONTAINER}/{lib.name}"}
        mounts = [*mounts, Mount(source=str(lib.parent), target=IN_CONTAINER)]
        return real_run(self, env=env, mounts=mounts, **kw)

    def proc_run(argv: list[str], **kw: Any) -> str:
        if argv[0] != "debootstrap":
            return real_proc_run(argv, **kw)
        inside = Path(argv[-2]) / str(lib).lstrip("/")
        inside.parent.mkdir(parents=True)
        shutil.copy2(lib, inside)
        kw["env"] = {**(kw.get("env") or {}), **clock(offset), "LD_PRELOAD": str(lib)}
        try:
            return real_proc_run(argv, **kw)
        finally:
            shutil.rmtree(inside.parent)

    Containers.run = run  # type: ignore[method-assign]
    proc.run = proc_run


if __name__ == "__main__":
    moved(sys.argv[1])
    sys.argv = ["sandbox", *sys.argv[2:]]
    from builder.cli.entry import main

    main()
