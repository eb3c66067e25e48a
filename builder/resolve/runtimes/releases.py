"""What a publisher's index answers: a request matched to a release, and its archive."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from builder.core.errors import ResolutionError

ARCH = {"linux/amd64": "amd64", "linux/arm64": "arm64"}
_STABLE = re.compile(r"[0-9]+(?:\.[0-9]+)*")


@dataclass(frozen=True, kw_only=True)
class Query:
    name: str
    request: str
    arch: str  # amd64 | arm64
    mirror: str | None

    def base(self, default: str) -> str:
        return (self.mirror or default).rstrip("/")

    def pick(self, versions: Iterable[str], source: str) -> str:
        """The newest stable version matching the request on dot boundaries."""
        stable = sorted(
            {v for v in versions if _STABLE.fullmatch(v)}, key=version_key, reverse=True
        )
        for version in stable:
            if version == self.request or version.startswith(self.request + "."):
                return version
        depth = self.request.count(".") + 1
        lines: dict[str, str] = {}
        for version in stable:  # the newest release of each line, e.g. 24.11.1, 23.11.1
            lines.setdefault(".".join(version.split(".")[:depth]), version)
        newest = ", ".join(list(lines.values())[:6]) or "none"
        msg = (
            f"runtime {self.name}: no stable release matches {self.request!r} at {source}. "
            f"Newest available: {newest}. Set [runtimes] {self.name} in sandbox.toml to one of "
            "these, or to a prefix of one (e.g. its major version)."
        )
        raise ResolutionError(msg)


@dataclass(frozen=True, kw_only=True)
class Release:
    version: str
    url: str
    sha256: str
    format: str
    root: str


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def listed(sums: str, filename: str, source: str, q: Query) -> str:
    """The digest `filename` has in a `sha256sum`-style list."""
    for line in sums.splitlines():
        digest, _, name = line.strip().partition(" ")
        if name.strip().lstrip("*") == filename and re.fullmatch(r"[0-9a-fA-F]{64}", digest):
            return digest.lower()
    msg = (
        f"runtime {q.name}: {source} lists no checksum for {filename}, so it cannot be "
        "verified. Pick another version, or fix the mirror."
    )
    raise ResolutionError(msg)
