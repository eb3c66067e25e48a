"""`sandbox overlay show` and `overlay apply`: the orchestrator overlay of the last build."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from builder.actions.buildrun import applied_line as _applied_line
from builder.actions.buildrun import apply_overlay as _apply_overlay
from builder.actions.buildrun import apply_plans as _apply_plans
from builder.actions.buildrun import preview_apply as _preview_apply
from builder.cli.options import dry_run_flag, json_flag, options
from builder.core.errors import LockError
from builder.core.layout import OVERLAY_FILE
from builder.orchestrator.risoluto import EXAMPLE_URL


def show(
    as_json: Annotated[
        bool, json_flag("One object: the overlay, the keys it sets, what it removes.")
    ] = False,
    url: Annotated[
        str | None,
        typer.Option(
            "--url", metavar="URL", help="What applying to URL removes [default: every URL]."
        ),
    ] = None,
) -> None:
    """Print the overlay the last build wrote; on stderr, what applying it sets and removes
    on each Risoluto an apply from this checkout recorded (as recorded here: `overlay apply
    URL --dry-run` asks the server, whose record every applier shares)."""
    cache_root = options.cache_dir
    path = cache_root / OVERLAY_FILE
    if not path.exists():
        msg = f"{path}: no overlay yet. Run `sandbox build` first"
        raise LockError(msg)
    plans = _apply_plans(path, cache_root, url)
    if as_json:
        from builder.orchestrator.overlay import leaves
        from builder.orchestrator.risoluto import read_overlay

        overlay = read_overlay(path)
        keys = sorted(".".join(p) for p, _ in leaves(overlay))
        remove = {plan.url: sorted(plan.remove) for plan in plans}
        typer.echo(
            json.dumps({"path": str(path), "overlay": overlay, "set": keys, "remove": remove})
        )
        return
    typer.echo(path.read_text(), nl=False)
    for plan in plans:
        for line in plan.lines():
            typer.echo(line, err=True)
    if not plans:
        typer.echo("no apply recorded yet: the first apply removes nothing", err=True)


def apply(
    url: Annotated[
        str, typer.Argument(metavar="URL", help=f"Risoluto's address, e.g. {EXAMPLE_URL}.")
    ],
    dry_run: Annotated[
        bool,
        dry_run_flag(
            "Read Risoluto's overlay and print what apply would set, remove and leave; "
            "change nothing."
        ),
    ] = False,
) -> None:
    """PUT the last build's overlay to Risoluto at URL and read it back to confirm.

    Keys an earlier apply set there (from any checkout, through any spelling of URL: the
    record is kept in Risoluto's overlay, under sandbox_builder.applied) that this overlay no
    longer holds are DELETEd first; Risoluto's other settings stay, and so does a recorded key
    someone changed since. Needs $RISOLUTO_WRITE_TOKEN when Risoluto has a write token.
    """
    cache_root = options.cache_dir
    path = cache_root / OVERLAY_FILE
    if dry_run:
        plan = _preview_apply(path, url, cache_root=cache_root)
        for line in plan.lines(would=True):
            typer.echo(line)
        return
    spec = options.spec()
    if spec.image.require_signed:
        from builder.actions.attest import require_signature
        from builder.actions.build import fresh_lock

        require_signature(spec=spec, lock=fresh_lock(spec), overlay=path)
    typer.echo(
        _applied_line(path, _apply_overlay(path, url, after_build=False, cache_root=cache_root))
    )
