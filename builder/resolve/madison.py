"""Which versions of Debian packages the mirror offers now, and from which suite.

`apt-cache madison` runs inside a container of the locked base, after `apt-get update` with
the very sources `sandbox lock` resolves against (the suite, its -updates and, on Debian's
mirror, -security: see `builder.kinds.base.sources_list`). Each line names a version and
the archive it comes from, so a version offered by `<suite>-security` is a security update.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from builder.core.errors import ResolutionError
from builder.engine.interface import Engine, kept_container, require_success
from builder.resolve.apt import APT_ENV, ForeignArch, apt_update


@dataclass(frozen=True, kw_only=True)
class Offer:
    """One version of a package on the mirror and the suites that carry it."""

    version: str
    suites: frozenset[str]

    @property
    def security(self) -> bool:
        return any(s.endswith("-security") for s in self.suites)


def parse_madison(text: str) -> dict[str, list[Offer]]:
    """Package -> its offers, from `apt-cache madison` lines (`name | version | url suite/...`).

    Source-package lines are skipped; a version carried by several suites is one offer.
    """
    found: dict[str, dict[str, set[str]]] = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not parts[0] or not parts[1]:
            continue
        name, version, origin = parts
        words = origin.split()
        if len(words) < 2 or words[-1] != "Packages":
            continue
        suite = words[1].split("/", 1)[0]
        found.setdefault(name, {}).setdefault(version, set()).add(suite)
    return {
        name: [Offer(version=v, suites=frozenset(s)) for v, s in sorted(versions.items())]
        for name, versions in sorted(found.items())
    }


def madison(
    names: list[str],
    *,
    engine: Engine,
    image: str,
    log_dir: Path,
    foreign: ForeignArch | None = None,
) -> str:
    """The raw `apt-cache madison` output for `names`, run in `image` after `apt-get update`
    (of `foreign`'s architecture, when set: see `builder.resolve.apt`)."""
    if not names:
        return ""
    setup = foreign.setup() if foreign else ""
    script = f"{setup}{apt_update()}\napt-cache madison {shlex.join(sorted(set(names)))}\n"
    log = log_dir / (f"apt-outdated-{foreign.arch}.log" if foreign else "apt-outdated.log")
    result = engine.run(image=image, script=script, log=log, env=APT_ENV, mounts=[], network=True)
    with kept_container(engine, result):
        what = "listing the versions the mirror offers (apt-cache madison)"
        require_success(result, what=what, log=log, error=ResolutionError)
    return log.read_text(errors="replace")
