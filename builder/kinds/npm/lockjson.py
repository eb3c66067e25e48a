"""npm's hidden lockfile, `node_modules/.package-lock.json`, as `npm ci` writes it.

npm records the tree it installed there, and later npm commands in that folder (`npm ls`)
read it instead of every package.json. For a tree installed from a package-lock whose entries
hold only the lock's fields (managers.NPM_FIELDS), each entry is the package-lock's own entry
for a package that was installed (left-out optional ones are absent), and the root is
`{"name", "version" (when the project has one), "lockfileVersion": 3, "requires": true,
"packages"}`.

npm writes it with json-stringify-nice: in every object, values that are not objects
(arrays included) before objects, then the keys npm prefers in its order (name, version,
lockfileVersion, resolved, integrity, requires, packages, dependencies), then the rest by
`localeCompare` (ICU's root collation, which `_collation_key` follows for ASCII: punctuation,
in ICU's order, before digits before letters, case second); 2-space indent and a newline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from builder.resolve import managers

_PREFERRED = (
    "name",
    "version",
    "lockfileVersion",
    "resolved",
    "integrity",
    "requires",
    "packages",
    "dependencies",
)
# ICU root collation order of ASCII punctuation and symbols (all before digits and letters)
_ICU_SYMBOLS = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$"


def hidden_lockfile(
    installed: Sequence[Mapping[str, Any]],
    name: str = managers.NPM_ROOT,
    version: str | None = None,
) -> str:
    """The text of node_modules/.package-lock.json for the `installed` pins of project
    `name` (at `version`, which npm writes when the project's package.json has one)."""
    packages = {str(p["path"]): {k: v for k, v in p.items() if k != "path"} for p in installed}
    root: dict[str, Any] = {"name": name}
    if version is not None:
        root["version"] = version
    tree = {**root, "lockfileVersion": 3, "requires": True, "packages": packages}
    return json.dumps(_ordered(tree), indent=2, ensure_ascii=False) + "\n"


def _ordered(value: Any) -> Any:
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    if not isinstance(value, Mapping):
        return value
    return {k: _ordered(value[k]) for k in sorted(value, key=lambda k: _sort_key(k, value[k]))}


def _sort_key(key: str, value: Any) -> tuple[bool, int, tuple[tuple[int, ...], ...]]:
    preferred = _PREFERRED.index(key) if key in _PREFERRED else len(_PREFERRED)
    return isinstance(value, Mapping), preferred, _collation_key(key)


def _collation_key(text: str) -> tuple[tuple[int, ...], ...]:
    """ICU's root order for ASCII text (letters ignore case first, lower before upper);
    other characters after, by code point."""
    primary, tertiary = [], []
    for char in text:
        if char in _ICU_SYMBOLS:
            primary.append(_ICU_SYMBOLS.index(char))
        elif char.isascii() and char.isalnum():
            primary.append(100 + ord(char.lower()))
        else:
            primary.append(1000 + ord(char))
        tertiary.append(1 if char.isupper() else 0)
    return tuple(primary), tuple(tertiary)
