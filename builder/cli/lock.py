"""`sandbox init`, `lock` and `outdated`: the spec and its pins."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from builder.actions.buildrun import cache_lock as _cache_lock
from builder.cli.options import PlatformOption, engine_factory, listed_platform, options
from builder.core.atomic import write_atomic
from builder.core.errors import LockError, SpecError
from builder.core.layout import SPEC_FILE
from builder.kinds import KINDS
from builder.model.spec import Spec
from builder.store.cache import Cache

if TYPE_CHECKING:
    from collections.abc import Callable

    from builder.core.progress import Progress
    from builder.engine.interface import Engine
    from builder.lock.stager import Stager
    from builder.model.lockfile import Lock


def init(
    force: Annotated[bool, typer.Option(help="Overwrite an existing sandbox.toml.")] = False,
) -> None:
    """Write a commented starter sandbox.toml."""
    from builder.cli.starter import STARTER

    # A new project starts here, not in the project whose subfolder this may be.
    path = options.spec_file if options.spec_given else Path.cwd() / SPEC_FILE
    if path.exists() and not force:
        msg = f"{path} already exists; pass --force to overwrite it"
        raise SpecError(msg)
    path.write_text(STARTER)
    typer.echo(f"wrote {path}; next: `sandbox lock`, then `sandbox build`")


def lock(
    check: Annotated[
        bool,
        typer.Option("--check", help="Exit 3 if sandbox.lock is missing or stale; write nothing."),
    ] = False,
    update: Annotated[
        bool,
        typer.Option("--update", help="Re-resolve NAMES (a package, tool or runtime), or all."),
    ] = False,
    names: Annotated[list[str] | None, typer.Argument(help="What --update re-resolves.")] = None,
    security: Annotated[
        bool,
        typer.Option(
            "--security",
            help="With --update: move just the apt packages with a pending security update.",
        ),
    ] = False,
) -> None:
    """Resolve sandbox.toml into sandbox.lock: every version and digest pinned.

    A node whose request did not change keeps its pins; `--update jq` moves just jq,
    `--update` alone re-resolves everything, `--update --security` just the Debian packages
    that `sandbox outdated` flags as security updates.
    """
    from builder.model import lockfile

    spec = options.spec()
    path = lockfile.lock_path(spec.path)
    if names and not update:
        msg = f"names go with --update, e.g. `sandbox lock --update {names[0]}`"
        raise typer.BadParameter(msg)
    if security and (names or not update):
        msg = "--security goes with --update alone: `sandbox lock --update --security`"
        raise typer.BadParameter(msg)
    if check:
        from builder.actions.build import check_fresh

        current = lockfile.read(path, KINDS)
        _warn_floating(spec, current)
        check_fresh(spec, current, path)
        typer.echo(f"{path.name} is up to date")
        return
    from builder.lock.locking import lock_project

    old = None
    if path.exists():
        try:
            old = lockfile.read(path, KINDS, older_recipes_ok=True)
        except LockError:
            if not update:
                raise
    cache = options.cache()
    started = time.monotonic()
    with _cache_lock(cache, "sandbox command"):
        if security:
            names = _security_names(spec, cache)
            if not names:
                typer.echo(f"no pending security updates; {path} unchanged", err=True)
                return
        engine, progress, stage = _resolving(spec, cache)
        new = lock_project(
            spec=spec,
            old=old,
            update=(names or []) if update else None,
            cache=cache,
            engine=engine,
            progress=progress,
            stage=stage,
        )
    text = lockfile.dumps(new)
    changed = not path.exists() or path.read_text() != text
    if changed:
        write_atomic(path, text.encode())
    state = "wrote" if changed else "unchanged:"
    typer.echo(f"{state} {path} ({time.monotonic() - started:.1f}s)", err=True)
    _warn_floating(spec, new)


def _resolving(spec: Spec, cache: Cache) -> tuple[Callable[[], Engine], Progress, Stager]:
    """The engine, the progress lines and the stages that lock and outdated resolve with:
    the stages build on that same engine and report on those same lines."""
    from builder.core.progress import Progress
    from builder.realize.stage import Stages

    engine, progress = engine_factory(), Progress()
    stages = Stages(cache=cache, engine=engine, progress=progress, project_dir=spec.project_dir)
    return engine, progress, stages


def _security_names(spec: Spec, cache: Cache) -> list[str]:
    """The apt packages `lock --update --security` moves (those `outdated` flags)."""
    from builder.actions.build import fresh_lock
    from builder.lock.outdated import pending_security

    current = fresh_lock(spec)
    engine, progress, stage = _resolving(spec, cache)
    names = pending_security(
        spec=spec, lock=current, cache=cache, engine=engine, progress=progress, stage=stage
    )
    if names:
        typer.echo(f"security updates pending for: {', '.join(names)}", err=True)
    return names


def _warn_floating(spec: Spec, lock_: Lock) -> None:
    """Tell reviewers what floats in sandbox.toml (pinned in the lock anyway), what the base
    image provides or loses, and which resource limits Docker would refuse: stderr only."""
    from builder.core.platforms import host_platform
    from builder.lock.pinning import floating, inherited
    from builder.orchestrator.overlay import resource_warnings

    nodes = lock_.platforms.get(host_platform()) or next(iter(lock_.platforms.values()), {})
    for warning in [*floating(spec, nodes), *resource_warnings(spec.sandbox.resources)]:
        typer.echo(f"warning: {warning}", err=True)
    for note in inherited(spec, nodes):
        typer.echo(f"note: {note}", err=True)


def outdated(
    as_json: Annotated[
        bool,
        typer.Option("--json", help='Print one JSON object: {"updates": [...], "security": N}.'),
    ] = False,
    every: Annotated[bool, typer.Option("--all", help="List every pin, not just updates.")] = False,
    platform: PlatformOption = None,
) -> None:
    """List the pins of sandbox.lock that have newer versions, and which are security fixes.

    For each pin: the newest version the spec allows and the newest overall, read from the
    sources `sandbox lock` uses. Exits 1 while a security update of a Debian package is
    pending (`sandbox lock --update --security` takes them), else 0.
    """
    from builder.actions.build import fresh_lock
    from builder.lock.outdated import outdated_project

    spec = options.spec()
    lock_ = fresh_lock(spec)
    cache = options.cache()
    with _cache_lock(cache, "sandbox command"):
        engine, progress, stage = _resolving(spec, cache)
        report = outdated_project(
            spec=spec,
            lock=lock_,
            cache=cache,
            engine=engine,
            progress=progress,
            stage=stage,
            platform=listed_platform(spec, platform),
        )
    if as_json:
        typer.echo(json.dumps(report.to_json(every=every), indent=2))
    else:
        typer.echo(report.table(every=every), nl=False)
        typer.echo(report.summary())
    if report.security:
        raise typer.Exit(1)
