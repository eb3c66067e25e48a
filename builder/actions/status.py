"""`sandbox status` and `graph`: what the lock builds, from the lock and the cache alone (no
Docker, no network)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from builder.actions.build import fresh_lock
from builder.core.layout import project_cache_dir
from builder.store.cache import Cache

if TYPE_CHECKING:
    from pathlib import Path

    from builder.model.spec import Spec
    from builder.realize.plan import BuildPlan


@dataclass(frozen=True, kw_only=True)
class Status:
    """What `build` would do: the plan (cached or to build, per node) and, for each node to
    build, why (what changed since the last build here)."""

    plan: BuildPlan
    why: dict[str, list[str]]
    where: dict[str, list[str]]  # where each node's parts are made (`Kind.placement`)


def build_status(*, spec: Spec, cache_dir: Path | None, platform: str) -> Status:
    """What building `platform` of `spec`'s fresh lock would do with the cache at `cache_dir`
    (None: `project_cache_dir`'s rule), which is read, never created."""
    from builder.core.platforms import host_platform
    from builder.kinds import KINDS
    from builder.realize import history
    from builder.realize.explain import reasons
    from builder.realize.plan import make_plan

    nodes = fresh_lock(spec).nodes(platform)
    cache = Cache(project_cache_dir(spec.path, cache_dir))
    plan = make_plan(nodes, cache.entry)
    # The build history (what changed since the last build) is the host's builds'.
    last = history.load(cache, spec.path) if platform == host_platform() else None
    return Status(plan=plan, why=reasons(nodes, last), where=KINDS.placement(nodes))


def graph_text(*, spec: Spec, fmt: str, keys_on: str | None) -> str:
    """`spec`'s layer graph rendered in `fmt` (text, dot, mermaid); with `keys_on` (a platform
    of the fresh lock; text only) each node's line ends with its key there (first 12)."""
    from builder.kinds import build_graph
    from builder.model.graph import render

    text = render(build_graph(spec), fmt)
    if keys_on is None:
        return text
    nodes = fresh_lock(spec).nodes(keys_on)
    lines = []
    for line in text.splitlines():
        name = line.split()[0]
        key = nodes[name].key.removeprefix("sha256:")[:12] if name in nodes else "?"
        lines.append(f"{line}  [{key}]")
    return "\n".join(lines) + "\n"
