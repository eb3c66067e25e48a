"""What `overlay apply` set on each orchestrator, so the next apply removes what it dropped.

Risoluto's PUT deep-merges, so a key left out of the overlay keeps its old value there: a
mount, a network or a limit removed from sandbox.toml would stay in force. So every apply
records, per orchestrator URL, each key path it set and the value it sent
(`cache/applied.json`); the next apply to that URL DELETEs the recorded keys its overlay no
longer holds, then PUTs the rest. Keys nobody recorded (the operator's own, under
`codex.sandbox` too) are never touched, and neither is a recorded key whose value changed on
the server since (someone else now owns it); both lists are in `ApplyPlan`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.core.atomic import write_atomic
from builder.core.errors import CacheError
from builder.core.layout import APPLIED_FILE
from builder.orchestrator.overlay import leaves

FILE = APPLIED_FILE
VERSION = 1

Applied = dict[str, dict[str, Any]]  # URL -> dotted key -> the value sent


@dataclass(frozen=True, kw_only=True)
class ApplyPlan:
    """What an apply to `url` sends: the keys it sets, and the recorded keys it removes."""

    url: str
    set: dict[str, Any]  # dotted key -> value
    remove: dict[str, Any]  # dotted key -> the value this tool set there before

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "set": sorted(self.set), "remove": sorted(self.remove)}

    def lines(self, *, would: bool = False) -> list[str]:
        """The plan for people: one line for what is set, one for what is removed."""
        sets, removes = ("would set", "would remove") if would else ("sets", "removes")
        removed = ", ".join(sorted(self.remove))
        why = " (set by an earlier apply, no longer in the overlay)" if removed else ""
        return [
            f"{self.url}: {sets} {len(self.set)} keys: {', '.join(sorted(self.set))}",
            f"{self.url}: {removes} {removed or 'nothing'}{why}",
        ]


def plan(overlay: dict[str, Any], url: str, applied: Applied) -> ApplyPlan:
    """The apply of `overlay` to `url` (already normalized by risoluto.check_url)."""
    sent = {".".join(path): value for path, value in leaves(overlay)}
    before = applied.get(url, {})
    remove = {
        key: value
        for key, value in before.items()
        if key not in sent and not any(_nested(key, other) for other in sent)
    }
    return ApplyPlan(url=url, set=sent, remove=remove)


def _nested(one: str, other: str) -> bool:
    """One key holds the other: the PUT replaces it anyway."""
    return one.startswith(other + ".") or other.startswith(one + ".")


def load(cache_root: Path) -> Applied:
    path = cache_root / FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise _corrupt(path, str(exc)) from exc
    urls = data.get("urls") if isinstance(data, dict) else None
    if not isinstance(urls, dict) or data.get("version") != VERSION:
        raise _corrupt(path, f"not version {VERSION} of the record")
    if not all(isinstance(keys, dict) for keys in urls.values()):
        raise _corrupt(path, "a URL's keys are not an object")
    return urls


def remember(cache_root: Path, url: str, keys: dict[str, Any]) -> None:
    """Record that `keys` are what this tool has set on `url` now."""
    applied = load(cache_root)
    applied[url] = keys
    text = json.dumps({"version": VERSION, "urls": applied}, indent=2, sort_keys=True) + "\n"
    write_atomic(cache_root / FILE, text.encode())


def _corrupt(path: Path, why: str) -> CacheError:
    msg = (
        f"{path} cannot be read ({why}). It records the keys `sandbox overlay apply` set on "
        "each orchestrator; delete it, and remove keys you no longer want by hand once "
        "(`DELETE /api/v1/config/overlay/<key>`), since the next apply cannot know them"
    )
    return CacheError(msg)
