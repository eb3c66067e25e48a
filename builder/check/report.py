"""What `sandbox check` reports: one line per check, as a table for people or JSON for machines.

A check either passed or failed; a warning (gVisor missing, a CA set it cannot judge) passes
but is marked, so CI stays green while a person still sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    check: str
    ok: bool
    detail: str
    warning: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, kw_only=True)
class Report:
    image: str
    results: list[CheckResult]
    seconds: float

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.ok]


def render_table(results: list[CheckResult]) -> str:
    """What passed and what did not, one line each: mark, check, detail."""
    width = max((len(r.check) for r in results), default=0)
    lines = []
    for result in results:
        mark = "FAIL" if not result.ok else ("warn" if result.warning else "ok")
        lines.append(f"  {mark:<4}  {result.check:<{width}}  {result.detail}")
    return "\n".join(lines) + "\n"
