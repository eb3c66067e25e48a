"""The platform this machine builds for, as the lock names platforms ("linux/amd64")."""

from __future__ import annotations

import os


def host_platform() -> str:
    machine = os.uname().machine.lower()  # (the `platform` module costs 2.4 ms to import)
    return "linux/arm64" if machine in ("aarch64", "arm64") else "linux/amd64"
