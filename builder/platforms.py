"""The platform this machine builds for, as the lock names platforms ("linux/amd64")."""

from __future__ import annotations

import platform as host


def host_platform() -> str:
    machine = host.machine().lower()
    return "linux/arm64" if machine in ("aarch64", "arm64") else "linux/amd64"
