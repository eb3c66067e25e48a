"""The result of `sandbox outdated`: each `Pin` next to what exists, and the `Report` shown as
a table, a summary line or JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Pin:
    """One pin of the lock next to what the spec allows now and the newest there is."""

    node: str
    package: str
    kind: str  # deb | pypi | npm | runtime | base | bin
    locked: str
    allowed: str  # "" when the spec puts no constraint of its own on it (a closure member)
    latest: str
    security: bool = False
    update: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "package": self.package,
            "kind": self.kind,
            "locked": self.locked,
            "allowed": self.allowed,
            "latest": self.latest,
            "security": self.security,
            "update": self.update,
        }


def security_updates(pins: Iterable[Pin]) -> list[str]:
    """The names of the Debian packages with a pending security update, sorted."""
    return sorted({p.package for p in pins if p.kind == "deb" and p.security and p.update})


@dataclass(frozen=True, kw_only=True)
class Report:
    pins: list[Pin] = field(default_factory=list)

    @property
    def updates(self) -> list[Pin]:
        return [p for p in self.pins if p.update]

    @property
    def security(self) -> list[Pin]:
        return [p for p in self.updates if p.security]

    def to_json(self, *, every: bool) -> dict[str, Any]:
        shown = self.pins if every else self.updates
        return {"updates": [p.to_json() for p in shown], "security": len(self.security)}

    def table(self, *, every: bool) -> str:
        shown = self.pins if every else self.updates
        header = ("NODE", "PACKAGE", "LOCKED", "ALLOWED", "LATEST", "SECURITY")
        rows = [header] + [
            (
                p.node,
                p.package,
                p.locked,
                p.allowed or "-",
                p.latest or "-",
                "security" if p.security and p.update else "",
            )
            for p in shown
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        return "\n".join(lines) + "\n" if shown else ""

    def summary(self) -> str:
        updates, security = len(self.updates), len(self.security)
        if not updates:
            return f"all {len(self.pins)} pins are current"
        note = f", {security} of them security updates" if security else ""
        hint = " (`sandbox lock --update --security` takes those)" if security else ""
        return f"{updates} of {len(self.pins)} pins have updates{note}{hint}"
