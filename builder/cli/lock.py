"""`sandbox init`, `lock` and `outdated`: the spec and its pins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from builder.cli.options import PlatformOption, engine_factory, json_flag, listed_platform, options
from builder.core.errors import SpecError
from builder.core.layout import SPEC_FILE


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
    spec = options.spec()
    if names and not update:
        msg = f"names go with --update, e.g. `sandbox lock --update {names[0]}`"
        raise typer.BadParameter(msg)
    if security and (names or not update):
        msg = "--security goes with --update alone: `sandbox lock --update --security`"
        raise typer.BadParameter(msg)
    from builder.actions.lock import check_lock, lock_spec
    from builder.core.progress import Progress

    if check:
        path = check_lock(spec=spec, progress=Progress())
        typer.echo(f"{path.name} is up to date")
        return
    lock_spec(
        spec=spec,
        cache_dir=options.cache_dir,
        update=(names or []) if update else None,
        security=security,
        engine=engine_factory(),
        progress=Progress(),
    )


def outdated(
    as_json: Annotated[
        bool, json_flag('Print one JSON object: {"updates": [...], "security": N}.')
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
    from builder.actions.lock import outdated_pins
    from builder.core.progress import Progress

    spec = options.spec()
    lock_ = fresh_lock(spec)  # a stale lock is refused before a platform it does not list
    report = outdated_pins(
        spec=spec,
        lock=lock_,
        cache_dir=options.cache_dir,
        platform=listed_platform(spec, platform),
        engine=engine_factory(),
        progress=Progress(),
    )
    if as_json:
        typer.echo(json.dumps(report.to_json(every=every), indent=2))
    else:
        typer.echo(report.table(every=every), nl=False)
        typer.echo(report.summary())
    if report.security:
        raise typer.Exit(1)
