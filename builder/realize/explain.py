"""Why a node rebuilds: which of its pinned inputs changed since the project's last build.

The answer is the difference between two sets of lock inputs, written for people:
`typescript 5.7.3 -> 5.6.3`, `+ left-pad 1.3.0`, `version: '22.11.0' -> '22.12.0'`, or
`built on runtime.node, which changed`. Lists of pins are matched by their name (or npm path),
so a one-package bump reads as one line, not as a shifted list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from builder.model.lockfile import NodeLock
from builder.realize.history import BuildRecord

MAX_LINES = 8
_IDS = ("name", "path")


def reasons(nodes: Mapping[str, NodeLock], before: BuildRecord | None) -> dict[str, list[str]]:
    """For each node whose key differs from the last build: why. Unchanged nodes map to []."""
    found: dict[str, list[str]] = {}
    for name, node in nodes.items():
        old = before.nodes.get(name) if before else None
        if old is None:
            found[name] = ["not in the last build" if before else "no earlier build recorded"]
            continue
        if old["key"] == node.key:
            found[name] = []
            continue
        lines = changes(old["inputs"], node.inputs)
        old_parents = before.nodes if before else {}
        for parent in node.parents:
            was = old_parents.get(parent, {}).get("key")
            if was != nodes[parent].key:
                lines.append(f"built on {parent}, which changed")
        found[name] = _clip(lines or ["its recipe changed (sandbox-builder was upgraded)"])
    return found


def changes(old: Any, new: Any, path: str = "") -> list[str]:
    """Human-readable differences between two JSON-like values."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        lines = []
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                lines.append(f"{sub}: added {_short(new[key])}")
            elif key not in new:
                lines.append(f"{sub}: removed")
            else:
                lines += changes(old[key], new[key], sub)
        return lines
    if _pins(old) and _pins(new):
        return _pin_changes(old, new, path)
    if old != new:
        return [f"{path}: {_short(old)} -> {_short(new)}"]
    return []


def _pins(value: Any) -> bool:
    """A list of tables each named by `name` or `path` (apt, pip, npm pins)."""
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and bool(value)
        and all(isinstance(v, Mapping) and any(k in v for k in _IDS) for v in value)
    )


def _pin_changes(old: Sequence[Any], new: Sequence[Any], path: str) -> list[str]:
    before, after = _by_id(old), _by_id(new)
    lines = []
    for ident in sorted(set(before) | set(after)):
        label = _label(ident)
        if ident not in before:
            lines.append(f"+ {label} {after[ident].get('version', '')}".rstrip())
        elif ident not in after:
            lines.append(f"- {label} {before[ident].get('version', '')}".rstrip())
        elif before[ident] != after[ident]:
            was, now = before[ident].get("version"), after[ident].get("version")
            if was != now:
                lines.append(f"{label} {was} -> {now}")
            else:
                lines += changes(before[ident], after[ident], f"{path}[{label}]")
    return lines


def _by_id(items: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {str(next(item[k] for k in _IDS if k in item)): item for item in items}


def _label(ident: str) -> str:
    """`node_modules/@openai/codex` -> `@openai/codex`; names stay as they are."""
    return ident.rsplit("node_modules/", 1)[-1]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _clip(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_LINES:
        return lines
    return [*lines[: MAX_LINES - 1], f"... and {len(lines) - MAX_LINES + 1} more changes"]
