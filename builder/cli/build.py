"""`sandbox build`, `publish`, `graph` and `status`: the image from the lock."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from builder.actions.buildrun import BuildRequest, run_build
from builder.actions.buildrun import print_plan as _print_plan
from builder.cli.options import (
    ApplyOption,
    JobsOption,
    JsonOption,
    PlatformOption,
    ProgressMode,
    ProgressOption,
    listed_platform,
    options,
)


def build(
    as_json: JsonOption = False,
    jobs: JobsOption = 2,
    overlay: Annotated[
        Path | None, typer.Option(help="Also write the overlay here [default: cache/overlay.json].")
    ] = None,
    push: Annotated[
        bool, typer.Option("--push", help="Then publish to [image].registry (see `publish`).")
    ] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="First say why each node rebuilds (what changed).")
    ] = False,
    apply: ApplyOption = None,
    platform: PlatformOption = None,
    progress: ProgressOption = ProgressMode.auto,
) -> None:
    """Build the image from sandbox.lock, reusing every layer whose inputs did not change.

    With [image].registry set, nodes a teammate published are pulled instead of built.
    `--platform linux/arm64` on an amd64 machine builds that platform under QEMU emulation.
    """
    _run_build(
        as_json=as_json,
        jobs=jobs,
        overlay=overlay,
        push=push,
        explain=explain,
        apply=apply,
        platform=platform,
        progress=progress,
    )


def publish(
    as_json: JsonOption = False,
    jobs: JobsOption = 2,
    apply: ApplyOption = None,
    platform: PlatformOption = None,
    progress: ProgressOption = ProgressMode.auto,
) -> None:
    """Build (normally all cached) and push to [image].registry: every node under its key, so
    teammates pull instead of building, and the image, pinned in the overlay by digest.

    A lock of several platforms pushes each one built here and an OCI index of them."""
    _run_build(
        as_json=as_json,
        jobs=jobs,
        overlay=None,
        push=True,
        explain=False,
        apply=apply,
        platform=platform,
        progress=progress,
    )


def _run_build(
    *,
    as_json: bool,
    jobs: int,
    overlay: Path | None,
    push: bool,
    explain: bool,
    apply: str | None,
    platform: str | None,
    progress: ProgressMode,
) -> None:
    run_build(
        BuildRequest(
            spec_file=options.spec_file,
            cache_dir=options.cache_dir,
            as_json=as_json,
            jobs=jobs,
            overlay=overlay,
            push=push,
            explain=explain,
            apply=apply,
            platform=platform,
            progress=progress.value,
        )
    )


class GraphFormat(StrEnum):
    text = "text"
    dot = "dot"
    mermaid = "mermaid"


def graph(
    fmt: Annotated[GraphFormat, typer.Option("--format", help="Output format.")] = GraphFormat.text,
    platform: PlatformOption = None,
) -> None:
    """Show the layer graph: each node and the nodes it is built on.

    The graph is the same on every platform; with `--platform` and a fresh lock, the text
    form also gives each node's key on that platform.
    """
    from builder.actions.status import graph_text

    spec = options.spec()
    # --platform only adds keys to the text form; another form ignores it.
    keys_on = listed_platform(spec, platform) if platform is not None and fmt == "text" else None
    typer.echo(graph_text(spec=spec, fmt=fmt.value, keys_on=keys_on), nl=False)


def status(platform: PlatformOption = None) -> None:
    """What `build` would do, from the lock and the cache alone (no Docker, no network)."""
    from builder.actions.status import build_status

    spec = options.spec()
    result = build_status(
        spec=spec, cache_dir=options.cache_dir, platform=listed_platform(spec, platform)
    )
    _print_plan(result.plan, result.why, result.where)
    todo = result.plan.to_build()
    typer.echo(f"{len(todo)} of {len(result.plan.steps)} nodes to build" if todo else "up to date")
