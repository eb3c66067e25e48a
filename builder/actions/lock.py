"""`sandbox lock` and `outdated`: sandbox.toml's pins written, checked, or compared with what
their sources offer now.

`lock_spec` re-resolves what changed (or what `update` names) under the cache's lock and
writes sandbox.lock only when its bytes change; `check_lock` refuses a missing or stale lock;
`outdated_pins` lists what could move. Both resolve with the same engine, progress lines and
stages (`_stages`), so `lock --update --security` moves exactly what `outdated` flags. What a
reviewer should know (floating requests, what the base image provides, resource limits Docker
would refuse) goes to stderr through `progress`, as the resolvers' own lines do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from builder.actions.build import check_fresh, fresh_lock
from builder.actions.buildrun import cache_lock, open_cache
from builder.core.atomic import write_atomic
from builder.core.errors import LockError
from builder.kinds import KINDS
from builder.model import lockfile

if TYPE_CHECKING:
    from pathlib import Path

    from builder.core.progress import Progress
    from builder.engine.interface import Engine
    from builder.lock.outdated import Report
    from builder.model.lockfile import Lock
    from builder.model.spec import Spec
    from builder.realize.stage import Stages
    from builder.store.cache import Cache


def check_lock(*, spec: Spec, progress: Progress) -> Path:
    """The path of `spec`'s sandbox.lock, which is fresh: else a LockError (exit 3), said
    after the lock's notes."""
    path = lockfile.lock_path(spec.path)
    current = lockfile.read(path, KINDS)
    _say_notes(spec, current, progress)
    check_fresh(spec, current, path)
    return path


def lock_spec(
    *,
    spec: Spec,
    cache_dir: Path | None,
    update: list[str] | None,
    security: bool,
    engine: Callable[[], Engine],
    progress: Progress,
) -> None:
    """Write `spec`'s sandbox.lock: the old lock's pins kept where the request did not change.

    `update` re-resolves those names (a package, tool or runtime; empty: everything), else
    None; `security` re-resolves just the Debian packages with a pending security update
    (none: nothing is resolved). An old lock that cannot be read is an error unless `update`
    is given. Says on stderr whether the file was written and what a reviewer should know.
    `cache_dir` is `--cache-dir` (None: `project_cache_dir`'s rule).
    """
    from builder.lock.locking import lock_project

    path = lockfile.lock_path(spec.path)
    old = None
    if path.exists():
        try:
            old = lockfile.read(path, KINDS, older_recipes_ok=True)
        except LockError:
            if update is None:
                raise
    cache = open_cache(spec.path, cache_dir)
    started = time.monotonic()
    with cache_lock(cache, "sandbox command"):
        if security:
            update = _security_names(spec=spec, cache=cache, engine=engine, progress=progress)
            if not update:
                progress.say(f"no pending security updates; {path} unchanged")
                return
        new = lock_project(
            spec=spec,
            old=old,
            update=update,
            cache=cache,
            engine=engine,
            progress=progress,
            stage=_stages(spec, cache, engine, progress),
        )
    text = lockfile.dumps(new)
    changed = not path.exists() or path.read_text() != text
    if changed:
        write_atomic(path, text.encode())
    state = "wrote" if changed else "unchanged:"
    progress.say(f"{state} {path} ({time.monotonic() - started:.1f}s)")
    _say_notes(spec, new, progress)


def outdated_pins(
    *,
    spec: Spec,
    lock: Lock,
    cache_dir: Path | None,
    platform: str,
    engine: Callable[[], Engine],
    progress: Progress,
) -> Report:
    """Every pin of `platform` in `lock` (`spec`'s), next to what its sources offer now
    (`cache_dir` as for `lock_spec`)."""
    from builder.lock.outdated import outdated_project

    cache = open_cache(spec.path, cache_dir)
    with cache_lock(cache, "sandbox command"):
        return outdated_project(
            spec=spec,
            lock=lock,
            cache=cache,
            engine=engine,
            progress=progress,
            stage=_stages(spec, cache, engine, progress),
            platform=platform,
        )


def _stages(spec: Spec, cache: Cache, engine: Callable[[], Engine], progress: Progress) -> Stages:
    """The stages the resolvers build on: on the resolvers' engine, on their progress lines."""
    from builder.realize.stage import Stages

    return Stages(cache=cache, engine=engine, progress=progress, project_dir=spec.project_dir)


def _security_names(
    *, spec: Spec, cache: Cache, engine: Callable[[], Engine], progress: Progress
) -> list[str]:
    """The apt packages `lock --update --security` moves (those `outdated` flags)."""
    from builder.lock.outdated import pending_security

    names = pending_security(
        spec=spec,
        lock=fresh_lock(spec),
        cache=cache,
        engine=engine,
        progress=progress,
        stage=_stages(spec, cache, engine, progress),
    )
    if names:
        progress.say(f"security updates pending for: {', '.join(names)}")
    return names


def _say_notes(spec: Spec, lock: Lock, progress: Progress) -> None:
    """Tell reviewers what floats in sandbox.toml (pinned in the lock anyway), what the base
    image provides or loses, and which resource limits Docker would refuse."""
    from builder.core.platforms import host_platform
    from builder.kinds.pinning import floating, inherited
    from builder.orchestrator.overlay import resource_warnings

    nodes = lock.platforms.get(host_platform()) or next(iter(lock.platforms.values()), {})
    for warning in [*floating(spec, nodes), *resource_warnings(spec.sandbox.resources)]:
        progress.say(f"warning: {warning}")
    for note in inherited(spec, nodes):
        progress.say(f"note: {note}")
