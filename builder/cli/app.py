"""The `sandbox` command line (typer). Glue only: parse options, call one action, render.

Each command lives in the module of its group (`lock`, `build`, `report`, `maintain`,
`overlay`, `trust`); this module makes the app and registers them. It is the only place that
catches `BuilderError` (`_Commands.invoke`): it prints the message and exits with the error's
code (DESIGN.md §10); `--verbose` adds the traceback. It does so inside the typer app, so
typer's CliRunner sees exactly what a user sees.

`--install-completion` / `--show-completion` are typer's (bash, zsh, fish, PowerShell); a
completing shell runs `sandbox` with `_SANDBOX_COMPLETE` set and no words, which entry.py
hands to this app.

Help is click's plain text (`rich_markup_mode=None`): rich markup would eat every `[table]`
name of the docstrings (`[image].registry` rendered as `.registry`) and print a `<bool>`
placeholder after each flag.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from builder.cli import build, lock, maintain, overlay, report, trust
from builder.cli.options import CacheDirOption, FileOption, VerboseOption, options
from builder.core import proc
from builder.core.errors import BuilderError
from builder.core.layout import find_spec, project_cache_dir


class _Commands(TyperGroup):
    """The app's command group: a BuilderError from any command becomes its message and code."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context, not exported
        try:
            return super().invoke(ctx)
        except BuilderError as exc:
            if options.verbose:
                traceback.print_exc()
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from exc


app = typer.Typer(
    cls=_Commands,
    help=(
        "Lockfile builds of the Docker images AI coding agents run in.\n\n"
        "Describe the sandbox once in sandbox.toml, pin it with `sandbox lock`, build it with "
        "`sandbox build`: only layers whose inputs changed rebuild, and the orchestrator "
        "overlay pinning the image by digest is written for you."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,
)


overlay_app = typer.Typer(
    help="Show the orchestrator overlay of the last build, or apply it.", rich_markup_mode=None
)

for command in (
    lock.init,
    lock.lock,
    build.build,
    build.publish,
    build.graph,
    build.status,
    lock.outdated,
    report.sbom,
    maintain.gc,
    report.check,
    maintain.doctor,
    trust.verify,
):
    app.command()(command)
overlay_app.command("show")(overlay.show)
overlay_app.command("apply")(overlay.apply)
app.add_typer(overlay_app, name="overlay")


@app.callback()
def _main(
    file: FileOption = None, cache_dir: CacheDirOption = None, verbose: VerboseOption = False
) -> None:
    spec_file = file.absolute() if file else find_spec(Path.cwd())
    options.spec_file = spec_file
    options.spec_given = file is not None
    options.cache_dir = project_cache_dir(spec_file, cache_dir.absolute() if cache_dir else None)
    options.verbose = verbose
    proc.VERBOSE = verbose


def main() -> None:
    """Entry point: run the app (whose group turns BuilderErrors into messages and codes)."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted: nothing half-written was kept; run the command again", err=True)
        sys.exit(130)
