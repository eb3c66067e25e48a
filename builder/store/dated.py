"""Dates a file holds in its bytes, clamped to the lock's epoch as every mtime is.

A layer must be a function of the lock alone, but a few files record the day they were
written inside their content, where clamping mtimes does not reach:

- `/etc/shadow` (and `shadow-`, the copy `useradd` and `pwconv` keep): field 3 of every entry
  is the day of the last password change, in days since 1970-01-01. debootstrap's `passwd`
  postinst (pwconv) and `useradd` write today's day unless told SOURCE_DATE_EPOCH (shadow
  4.9+ honours it; bullseye's 4.8 and older bases do not), so two builds of one lock on two
  days differed in exactly these bytes.

`/etc/gshadow` has no date field. Each day larger than the epoch's day is set to the epoch's
day: what SOURCE_DATE_EPOCH would have given. A day already below it (a base image's own
accounts) is kept. An epoch of 0 (an `[base] image`, whose lock has no release date) makes
the field empty, as shadow itself does for a day 0, which would otherwise force a password
change at the next login ("better disable aging than require a password change").
"""

from __future__ import annotations

SECONDS_A_DAY = 86400

# Layer names (no leading "/") of the files whose bytes hold dates.
DATED = frozenset({"etc/shadow", "etc/shadow-"})


def is_dated(name: str) -> bool:
    return name in DATED


def clamp_dates(data: bytes, epoch: int) -> bytes:
    """A shadow file's bytes with every last-change day after `epoch`'s day clamped to it."""
    day = epoch // SECONDS_A_DAY
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        fields = line.split(b":")
        if len(fields) < 3 or not fields[2].isdigit():
            continue  # a comment, a blank line, or an empty day (aging off): nothing dated
        if int(fields[2]) > day:
            fields[2] = str(day).encode() if day > 0 else b""
            lines[i] = b":".join(fields)
    return b"\n".join(lines)
