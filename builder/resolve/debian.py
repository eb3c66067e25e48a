"""Parsing what Debian's tools print: deb822 stanzas and `apt-get -s` simulation lines."""

from __future__ import annotations

import re

_INST = re.compile(r"^Inst (?P<name>\S+) (?:\[(?P<old>[^\]]+)\] )?\((?P<version>\S+) ")


def parse_stanzas(text: str) -> list[dict[str, str]]:
    """Stanzas of a deb822 file (Packages, `apt-cache show`); continuation lines dropped."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current = {}
        elif not line[0].isspace() and ":" in line:
            field, _, value = line.partition(":")
            current[field] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def parse_simulation(text: str) -> dict[str, str]:
    """Package name -> version of every `Inst` line of `apt-get install -s` (new or upgraded)."""
    found = {}
    for line in text.splitlines():
        match = _INST.match(line)
        if match:
            found[match.group("name")] = match.group("version")
    return found
