"""`[sandbox.resources]` and `[sandbox.logs]` values read the way Docker reads them.

Risoluto copies these strings into `docker run --memory ... --cpus ... --tmpfs /tmp:size=...`
and `--log-opt max-size=...` on the orchestrator's host, where a value Docker cannot read stops
every agent from starting, and `0` silently means "no limit". So each value is checked here,
when sandbox.toml is read, against the parser that will read it:

- `memory`, `memory_reservation`, `memory_swap`: go-units `RAMInBytes` (the `docker` CLI),
  `^(\\d+(\\.\\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$` in binary units; an `i` is only taken after
  a unit letter (the newer go-units parser refuses `"4i"`). Docker's daemon refuses memory
  limits and reservations under 6 MiB; `memory_swap` may also be `"-1"` (unlimited swap).
- `tmpfs_size`: the kernel's tmpfs `size=` option, which Docker passes through unparsed:
  `memparse` (a whole number with one optional K/M/G/T/P/E letter, no `b`, no fraction) or a
  percentage of RAM (`"50%"`).
- `cpus`: `docker run --cpus`, a positive decimal from 0.01 with at most 9 decimal places
  (Docker stores nano-CPUs); a TOML number is allowed and kept as its string, since Risoluto
  reads `cpus` as a string.
- `logs.max_size`: the json-file and local drivers' `FromHumanSize` (the same pattern in
  decimal units), more than 0.

Each checker returns None for a good value, else the problem phrase the spec error shows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?(?:([kmgtp])i?)?b?", re.IGNORECASE)
_UNIT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_TMPFS = re.compile(r"\d+[kmgtpe]?|\d+%", re.IGNORECASE)
_CPUS = re.compile(r"\d+(?:\.\d+)?|\.\d+")
MIN_MEMORY = 6 << 20  # the daemon's linuxMinMemory: "Minimum memory limit allowed is 6MB"

# key -> a good value, as the fix of an error about that key shows it
EXAMPLES = {
    "memory": '"4g"',
    "memory_reservation": '"1g"',
    "memory_swap": '"8g" (or "-1" for unlimited swap)',
    "cpus": '"2" or "1.5"',
    "tmpfs_size": '"512m"',
    "max_size": '"10m"',
}


def docker_size(text: str) -> int | None:
    """Bytes of a Docker size such as "512m" or "4g"; -1 for "-1"; None if unreadable."""
    if text.strip() == "-1":
        return -1
    match = _SIZE.fullmatch(text.strip())
    return int(float(match.group(1)) * _UNIT[(match.group(2) or "").lower()]) if match else None


def _memory(value: str) -> str | None:
    size = docker_size(value) if value == value.strip() else None
    if size is None or size == -1:
        return "is not a size Docker reads (a number with an optional k, m, g, t or p unit)"
    if size < MIN_MEMORY:
        return "is below 6m, the least Docker allows (and 0 would mean no limit)"
    return None


def _swap(value: str) -> str | None:
    return None if value == "-1" else _memory(value)


def _tmpfs(value: str) -> str | None:
    if not _TMPFS.fullmatch(value):
        return (
            "is not a tmpfs size (the kernel reads a whole number with an optional k, m, g, "
            "t, p or e unit, no fraction and no `b`, or a percentage of RAM)"
        )
    if not value.rstrip("kmgtpeKMGTPE%").strip("0"):
        return "is 0, which the kernel reads as no limit"
    return None


def _cpus(value: str) -> str | None:
    if not _CPUS.fullmatch(value):
        return "is not a decimal number of CPUs (what `docker run --cpus` reads)"
    try:
        cpus = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        return "is not a decimal number of CPUs"
    if cpus < Decimal("0.01"):
        return "is below 0.01, the least `docker run --cpus` allows (and 0 means no limit)"
    if cpus != cpus.quantize(Decimal("1e-9")):
        return "has more than 9 decimal places, finer than Docker counts CPUs"
    return None


def _log_size(value: str) -> str | None:
    size = docker_size(value) if value == value.strip() else None
    if size is None or size == -1:
        return "is not a size Docker reads (a number with an optional k, m or g unit)"
    return "is 0; the log driver needs a positive max-size" if size == 0 else None


CHECKS: dict[str, Callable[[str], str | None]] = {
    "memory": _memory,
    "memory_reservation": _memory,
    "memory_swap": _swap,
    "tmpfs_size": _tmpfs,
    "cpus": _cpus,
    "max_size": _log_size,
}
NUMBERS_ALLOWED = frozenset({"cpus"})  # a TOML number is read as its string
