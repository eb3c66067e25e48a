"""QEMU user emulation: whether this machine runs another platform's programs.

Debian's `qemu-user-static` registers its interpreters with the kernel's binfmt_misc (through
`binfmt-support`) with the F flag: the kernel opens the interpreter once, at registration, so
it also runs programs inside containers, whose filesystem lacks it. With that, an arm64
image's steps run unchanged on an amd64 engine, 10-20x slower than natively.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from builder.core.errors import BuilderError, BuildError

BINFMT = Path("/proc/sys/fs/binfmt_misc")
# The binfmt_misc entry qemu-user-static registers for each platform's machine.
_ENTRIES = {"linux/arm64": "qemu-aarch64", "linux/amd64": "qemu-x86_64"}
SETUP = (
    "apt-get install qemu-user-static binfmt-support (scripts/host-setup.sh does), and mount "
    "binfmt_misc: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc"
)


@dataclass(frozen=True, kw_only=True)
class Emulation:
    platform: str
    available: bool
    detail: str  # the interpreter and its flags, or what is missing


def emulation(platform: str, binfmt: Path | None = None) -> Emulation:
    """What binfmt_misc (at `binfmt`, else BINFMT) says about running `platform`'s programs."""
    binfmt = binfmt or BINFMT
    name = _ENTRIES[platform]
    if not (binfmt / "status").exists():
        return Emulation(platform=platform, available=False, detail="binfmt_misc is not mounted")
    entry = binfmt / name
    if not entry.exists():
        return Emulation(platform=platform, available=False, detail=f"no {name} registered")
    fields = dict(line.split(" ", 1) for line in entry.read_text().splitlines()[1:] if " " in line)
    state = entry.read_text().split("\n", 1)[0].strip()
    flags = fields.get("flags:", "").strip()
    interpreter = fields.get("interpreter", "?").strip()
    if state != "enabled":
        detail = f"{name} is {state} (update-binfmts --enable {name})"
        return Emulation(platform=platform, available=False, detail=detail)
    if "F" not in flags:
        detail = f"{name} lacks the F flag, so containers cannot use {interpreter}"
        return Emulation(platform=platform, available=False, detail=detail)
    return Emulation(platform=platform, available=True, detail=f"{interpreter} (flags {flags})")


def require_emulation(
    platform: str, *, what: str = "", error: type[BuilderError] = BuildError
) -> None:
    """Refuse to run `platform`'s programs on this machine's engine when it cannot.

    An engine elsewhere (DOCKER_HOST tcp:// or ssh://) is not checked: its own kernel decides.
    """
    if os.environ.get("DOCKER_HOST", "unix://").split("://", 1)[0] not in ("unix", ""):
        return
    found = emulation(platform)
    if not found.available:
        msg = (
            f"{what or f'building {platform}'} here needs QEMU user emulation, and "
            f"{found.detail}. Install it: {SETUP}; or "
            f"{'lock' if what else 'build'} on a {platform} machine"
        )
        raise error(msg)
