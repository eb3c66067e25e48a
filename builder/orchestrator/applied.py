"""What `overlay apply` set on an orchestrator, so the next apply removes what it dropped.

Risoluto's PUT deep-merges, so a key left out of the overlay keeps its old value there: a
mount, a network or a limit removed from sandbox.toml would stay in force. So every apply
also writes, into Risoluto's own overlay, the record of what it set: under `RECORD`
(`sandbox_builder.applied`, a top-level key Risoluto stores but does not read), a sorted list
of `<dotted key>=<digest of the value sent>`. A list is replaced whole by the next PUT, so the
record is always the last apply's. Being on the server, it is read by whoever applies next,
from any checkout and however the URL is spelled (`localhost`, `127.0.0.1`, a trailing
slash): that apply DELETEs each recorded key its overlay no longer holds, then PUTs the rest.

Keys nobody recorded (the operator's own, under `codex.sandbox` too) are never touched, and
neither is a recorded key whose value changed on the server since (someone else now owns it):
`ApplyPlan.left`. This checkout also keeps what it set per URL in `cache/applied.json`: what
`overlay show` reports without asking a server, and the record an apply made before the
record moved to the server (read as if it were there, for that URL).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.core.atomic import write_atomic
from builder.core.errors import CacheError
from builder.core.keys import canonical_bytes, content_digest
from builder.core.layout import APPLIED_FILE
from builder.orchestrator.overlay import MISSING, leaves, lookup

FILE = APPLIED_FILE
VERSION = 1
RECORD = ("sandbox_builder", "applied")  # where in Risoluto's overlay the record lives

Applied = dict[str, dict[str, Any]]  # URL -> dotted key -> the value sent


@dataclass(frozen=True, kw_only=True)
class ApplyPlan:
    """What an apply to `url` does: the keys it sets, the recorded keys it removes, and the
    recorded keys it leaves because they changed on the server since."""

    url: str
    set: dict[str, Any]  # dotted key -> value
    remove: dict[str, str]  # dotted key -> digest of the value an earlier apply set there
    left: tuple[str, ...] = ()  # recorded, but holding another value now: not ours any more
    asked: bool = True  # False: planned from this checkout's record, without the server

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "set": sorted(self.set),
            "remove": sorted(self.remove),
            "left": list(self.left),
        }

    def lines(self, *, would: bool = False) -> list[str]:
        """The plan for people: what is set, what is removed, and what is left and why."""
        sets, removes, leaves = (
            ("would set", "would remove", "would leave") if would else ("sets", "removes", "leaves")
        )
        removed = ", ".join(sorted(self.remove))
        why = " (set by an earlier apply, no longer in the overlay)" if removed else ""
        lines = [
            f"{self.url}: {sets} {len(self.set)} keys: {', '.join(sorted(self.set))}",
            f"{self.url}: {removes} {removed or 'nothing'}{why}",
        ]
        if self.left:
            lines.append(
                f"{self.url}: {leaves} {', '.join(self.left)} (changed on the server since an "
                "earlier apply set it: no longer ours)"
            )
        return lines


def digest(value: Any) -> str:
    """What the record keeps of a value: enough to tell it changed, nothing of a secret."""
    return content_digest(canonical_bytes(value)).removeprefix("sha256:")[:16]


def record(overlay: dict[str, Any]) -> dict[str, Any]:
    """The record of `overlay`'s keys, as the top-level object to PUT beside it."""
    entries = sorted(f"{'.'.join(path)}={digest(value)}" for path, value in leaves(overlay))
    return {RECORD[0]: {RECORD[1]: entries}}


def recorded(stored: Mapping[str, Any]) -> dict[str, str]:
    """dotted key -> digest, from the record in Risoluto's overlay `stored` (none: empty)."""
    holder = stored.get(RECORD[0])
    entries = holder.get(RECORD[1]) if isinstance(holder, dict) else None
    if not isinstance(entries, list):
        return {}
    found = {}
    for entry in entries:
        if isinstance(entry, str) and "=" in entry:
            key, _, value = entry.rpartition("=")
            found[key] = value
    return found


def plan(
    overlay: dict[str, Any],
    url: str,
    *,
    stored: Mapping[str, Any] | None,
    here: Mapping[str, Any] | None = None,
) -> ApplyPlan:
    """The apply of `overlay` to `url` (normalized by risoluto.check_url), from the overlay
    Risoluto holds now (`stored`; None: plan offline, from `here` alone) and what this
    checkout recorded it set at that URL (`here`: dotted key -> the value sent)."""
    sent = {".".join(path): value for path, value in leaves(overlay)}
    ours = {key: digest(value) for key, value in (here or {}).items()}
    ours.update(recorded(stored or {}))
    dropped = {
        key: value
        for key, value in ours.items()
        if key not in sent and not any(_nested(key, other) for other in sent)
    }
    if stored is None:
        return ApplyPlan(url=url, set=sent, remove=dropped, asked=False)
    remove, left = {}, []
    for key, value in sorted(dropped.items()):
        now = lookup(stored, tuple(key.split(".")))
        if now is MISSING:
            continue  # someone removed it already
        if digest(now) == value:
            remove[key] = value
        else:
            left.append(key)
    return ApplyPlan(url=url, set=sent, remove=remove, left=tuple(left))


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
