"""Ordering and matching versions the way each ecosystem does, for `sandbox outdated`.

- Debian: dpkg's own comparison (epoch, upstream, revision; `~` sorts before everything),
  from python-debian (the Debian python team's `debian_support.Version`).
- npm: semver ordering and a matcher for the range forms specs use in practice: exact
  (`1.2.3`, `=1.2.3`), `^`, `~`, x-ranges and partials (`1.x`, `1.2.*`, `5`), comparators
  (`>=1.2 <2`), `||`, `*`/empty. Prereleases match only an exact pin, as npm does by default.
- PyPI: `packaging` (PEP 440 versions and specifiers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from debian.debian_support import Version as DebianVersion
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

# -- Debian ------------------------------------------------------------------------------------


def debian_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as Debian version `a` sorts before, with or after `b` (dpkg's order)."""
    first, second = DebianVersion(a), DebianVersion(b)
    return (first > second) - (first < second)


def debian_newest(versions: Iterable[str]) -> str:
    """The newest of `versions` ("" when there are none; the first of equal ones)."""
    return max(versions, key=DebianVersion, default="")


# -- npm ---------------------------------------------------------------------------------------

_SEMVER = re.compile(
    r"v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?"
)
_PARTIAL = re.compile(r"v?(?P<parts>[0-9xX*]+(?:\.[0-9xX*]+){0,2})(?:-(?P<pre>[0-9A-Za-z.-]+))?")
_COMPARATOR = re.compile(r"(?P<op>\^|~>?|>=|<=|>|<|=)?\s*(?P<version>[^\s<>=^~]*)")

SemverKey = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]


def semver_key(version: str) -> SemverKey | None:
    """A sort key for semver `version` (a release sorts after its prereleases), or None."""
    match = _SEMVER.fullmatch(version.strip())
    if match is None:
        return None
    pre = match.group("pre")
    ids: tuple[tuple[int, int | str], ...] = ()
    if pre:
        ids = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    major, minor, patch = (int(match.group(k)) for k in ("major", "minor", "patch"))
    return (major, minor, patch, 0 if pre else 1, ids)


Bound = tuple[str, tuple[int, int, int]]  # (">=" | "<" | "=", version)


def _partial(text: str) -> tuple[list[int], str] | None:
    match = _PARTIAL.fullmatch(text)
    if match is None:
        return None
    parts: list[int] = []
    for part in match.group("parts").split("."):
        if part in ("x", "X", "*"):
            break
        parts.append(int(part))
    return parts, match.group("pre") or ""


def _bump(parts: list[int]) -> tuple[int, int, int]:
    """The first version past a partial: 1 -> 2.0.0, 1.2 -> 1.3.0."""
    return _full([*parts[:-1], parts[-1] + 1])


def _full(parts: list[int]) -> tuple[int, int, int]:
    padded = [*parts, 0, 0, 0]
    return padded[0], padded[1], padded[2]


def _bounds(op: str, text: str) -> list[Bound]:
    if text in ("", "*", "x", "X", "latest"):
        return []
    parsed = _partial(text)
    if parsed is None:
        msg = f"unsupported npm range part {op}{text!r}"
        raise ValueError(msg)
    parts = parsed[0]
    if not parts:
        return []
    low = _full(parts)
    exact = len(parts) == 3
    if op in ("", "="):
        return [("=", low)] if exact else [(">=", low), ("<", _bump(parts))]
    if op == "^":
        first = next((i for i, p in enumerate(parts) if p != 0), len(parts) - 1)
        return [(">=", low), ("<", _bump(parts[: first + 1]))]
    if op in ("~", "~>"):
        return [(">=", low), ("<", _bump(parts[:2] if len(parts) > 1 else parts))]
    if op == ">=":
        return [(">=", low)]
    if op == "<":
        return [("<", low)]
    if op == ">":
        return [(">=", _bump(parts))]
    return [("<", _bump(parts))]  # "<="


def _satisfies(key: SemverKey, bounds: list[Bound], exact_pre: bool) -> bool:
    release = key[:3]
    if key[3] == 0 and not exact_pre:
        return False
    for op, version in bounds:
        if (
            (op == "=" and release != version)
            or (op == ">=" and release < version)
            or (op == "<" and release >= version)
        ):
            return False
    return True


def npm_max_satisfying(versions: Iterable[str], spec_range: str) -> str:
    """The newest of `versions` that `spec_range` allows ("" when none does).

    Raises ValueError for a range form the matcher does not know (hyphen ranges, tags).
    """
    alternatives = []
    for alternative in spec_range.split("||"):
        bounds: list[Bound] = []
        pieces = [m for m in _COMPARATOR.finditer(alternative.strip()) if m.group(0)]
        for piece in pieces:
            bounds.extend(_bounds(piece.group("op") or "", piece.group("version")))
        alternatives.append(bounds)
    keyed = [(k, v) for v in versions if (k := semver_key(v)) is not None]
    best: tuple[SemverKey, str] | None = None
    for key, version in keyed:
        exact_pre = any(
            key[3] == 0 and len(b) == 1 and b[0] == ("=", key[:3]) for b in alternatives
        )
        if any(_satisfies(key, bounds, exact_pre) for bounds in alternatives) and (
            best is None or key > best[0]
        ):
            best = (key, version)
    return best[1] if best else ""


def semver_newer(candidate: str, locked: str) -> bool:
    new, old = semver_key(candidate), semver_key(locked)
    return new is not None and old is not None and new > old


# -- PyPI --------------------------------------------------------------------------------------


def pypi_allowed(requirement: str, versions: Iterable[str]) -> str:
    """The newest release of `versions` that requirement's specifier allows ("" if none)."""
    try:
        specifier = Requirement(requirement).specifier
    except InvalidRequirement:
        return ""
    parsed = _pep440(versions)
    allowed = list(specifier.filter(parsed))
    return parsed[max(allowed)] if allowed else ""


def pypi_newest(versions: Iterable[str]) -> str:
    """The newest final release (no pre- or dev-release) of `versions`."""
    parsed = _pep440(versions)
    final = [v for v in parsed if not v.is_prerelease]
    return parsed[max(final)] if final else ""


def pypi_newer(candidate: str, locked: str) -> bool:
    try:
        return bool(candidate) and Version(candidate) > Version(locked)
    except InvalidVersion:
        return False


def _pep440(versions: Iterable[str]) -> dict[Version, str]:
    """Parsed version -> the string the index spells it with (invalid ones dropped)."""
    parsed: dict[Version, str] = {}
    for version in versions:
        try:
            parsed.setdefault(Version(version), version)
        except InvalidVersion:
            continue
    return parsed
