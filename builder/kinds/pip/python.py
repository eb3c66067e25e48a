"""The python3 an image makes its pip tools' venvs with, read from the lock alone.

A venv is laid on the host only when the lock says which interpreter the image runs: its
path, what `python3` on PATH is, and its X.Y.Z (pyvenv.cfg holds all three). Debian's apt
pins say it: `python3-minimal` puts `/usr/bin/python3` (a link to `python3.X`), and
`python3.X-minimal` at Debian version `3.X.Z-...` is CPython 3.X.Z (upstream version before
the Debian revision, `~rc1`/`+` suffixes cut as `sys.version_info` has no room for them). The
system node's pins are read first, then the base's dpkg list (an image base with python).

Not said here, so built in a container: a `runtime.python` node (its venv layout from a
publisher's archive is not checked against its own `venv` module here), a base whose python
is a program without dpkg pins, or two `python3.X-minimal` pins (which one `python3` is).

Bytecode: the host's python compiles a tool's .py files when its `MAGIC_NUMBER` is the one of
the image's minor version (`MAGIC`, from CPython's `importlib/_bootstrap_external.py`; one
number per minor release once it is final), else the venv is made in a container.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Mapping
from typing import Any

from builder.model.lockfile import NodeLock
from builder.model.toolinputs import ImagePython
from builder.resolve.image import BaseFacts

# CPython's bytecode magic number of each final minor release (the first two bytes, little
# endian, then \r\n): what a .pyc starts with and what its interpreter checks.
MAGIC: Mapping[str, int] = {
    "3.8": 3413,
    "3.9": 3425,
    "3.10": 3439,
    "3.11": 3495,
    "3.12": 3531,
    "3.13": 3571,
}
_MINIMAL = re.compile(r"python3\.(\d+)-minimal")
_UPSTREAM = re.compile(r"(?:\d+:)?(3\.\d+\.\d+)(?:[~+].*)?-[^-]+")


def image_python(nodes: Mapping[str, NodeLock]) -> dict[str, str] | None:
    """The lock's `interpreter` table of tools.pip from locked `nodes` (system, base), or
    None when they do not say which python3 the image runs (see the module docstring)."""
    if any(name.startswith("runtime.python") for name in nodes):
        return None
    for pins in _dpkg_lists(nodes):
        if "python3-minimal" not in pins:
            continue
        found = [(m.group(1), v) for p, v in pins.items() if (m := _MINIMAL.fullmatch(p))]
        if len(found) != 1:
            return None
        minor, version = found[0]
        upstream = _UPSTREAM.fullmatch(version)
        if upstream is None or not upstream.group(1).startswith(f"3.{minor}."):
            return None
        return {
            "command": "/usr/bin/python3",
            "executable": f"/usr/bin/python3.{minor}",
            "version": upstream.group(1),
        }
    return None


def _dpkg_lists(nodes: Mapping[str, NodeLock]) -> list[dict[str, str]]:
    """name -> Debian version of the system node's apt pins, then the base's dpkg list."""
    lists = []
    system = nodes.get("system")
    if system is not None:
        packages: list[Any] = list(system.inputs.get("packages", []))
        lists.append({str(p["name"]): str(p["version"]) for p in packages})
    base = nodes.get("base")
    if base is not None:
        lists.append(dict(BaseFacts.of(base.inputs).packages))
    return lists


def magic_of(python: ImagePython) -> int | None:
    """The bytecode magic number of the image's python, None for a minor version not known."""
    return MAGIC.get(python.minor)


def host_magic() -> int:
    """The magic number of the python running this builder."""
    return int.from_bytes(importlib.util.MAGIC_NUMBER[:2], "little")


def compile_refusal(python: ImagePython) -> str | None:
    """Why this host cannot byte-compile for the image's python, or None when it can."""
    magic = magic_of(python)
    host = f"{sys.version_info.major}.{sys.version_info.minor}"
    if magic is None or magic != host_magic() or host != python.minor:
        return (
            f"the image's python {python.version} compiles bytecode this host's python "
            f"{host} cannot write (magic {magic} against {host_magic()})"
        )
    return None
