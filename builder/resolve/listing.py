"""What a runtime publisher lists now: the release a request picks, and the newest overall.

The same finders `sandbox lock` uses (`builder.resolve.runtimes.PUBLISHERS`) read the publisher's
index; a Query that remembers the versions it was offered gives the newest stable one too,
without downloading any archive.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field

from builder.core.errors import ResolutionError
from builder.model.spec import RuntimeSpec
from builder.resolve.runtimes import PUBLISHERS
from builder.resolve.runtimes.releases import _STABLE, ARCH, Query, version_key


@dataclass(frozen=True, kw_only=True)
class _ListingQuery(Query):
    offered: list[str] = field(default_factory=list)

    def pick(self, versions: Iterable[str], source: str) -> str:
        seen = list(versions)
        self.offered.extend(seen)
        return super().pick(seen, source)


def runtime_versions(runtime: RuntimeSpec, *, platform: str) -> tuple[str, str]:
    """(allowed, latest): the release `runtime.version` picks now, and the newest stable one."""
    publisher = PUBLISHERS.get((runtime.name, runtime.provider))
    if publisher is None or platform not in ARCH:
        msg = (
            f"runtime {runtime.name}: provider '{runtime.provider}' on {platform} has no "
            "release index to compare against. Check [runtimes] in sandbox.toml"
        )
        raise ResolutionError(msg)
    query = _ListingQuery(
        name=runtime.name, request=runtime.version, arch=ARCH[platform], mirror=runtime.mirror
    )
    try:
        allowed = publisher.find(query).version
    except (KeyError, TypeError, ValueError, AttributeError, tomllib.TOMLDecodeError) as exc:
        msg = (
            f"runtime {runtime.name}: the {runtime.provider} index has an unexpected shape "
            f"({exc!r}). If `mirror` is set, check that it copies the publisher's files exactly."
        )
        raise ResolutionError(msg) from exc
    stable = [v for v in query.offered if _STABLE.fullmatch(v)]
    latest = max(stable, key=version_key) if stable else allowed
    return allowed, latest
