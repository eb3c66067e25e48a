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
from builder.model.spec import Spec
from builder.realize import history
from builder.store.cache import Cache


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
    from builder.model.graph import build_graph, render

    spec = options.spec()
    text = render(build_graph(spec), fmt.value)
    if platform is not None:
        text = _keyed(spec, text, listed_platform(spec, platform)) if fmt == "text" else text
    typer.echo(text, nl=False)


def _keyed(spec: Spec, text: str, platform: str) -> str:
    """The text graph with each node's key (first 12) on `platform`, from the fresh lock."""
    from builder.actions.build import fresh_lock

    nodes = fresh_lock(spec).nodes(platform)
    lines = []
    for line in text.splitlines():
        name = line.split()[0]
        key = nodes[name].key.removeprefix("sha256:")[:12] if name in nodes else "?"
        lines.append(f"{line}  [{key}]")
    return "\n".join(lines) + "\n"


def status(platform: PlatformOption = None) -> None:
    """What `build` would do, from the lock and the cache alone (no Docker, no network)."""
    from builder.actions.build import fresh_lock
    from builder.core.platforms import host_platform
    from builder.realize.explain import reasons
    from builder.realize.plan import make_plan

    spec = options.spec()
    chosen = listed_platform(spec, platform)
    lock_ = fresh_lock(spec)
    cache = Cache(options.cache_dir)
    nodes = lock_.nodes(chosen)
    plan = make_plan(nodes, cache.entry)
    # The build history (what changed since the last build) is the host's builds'.
    last = history.load(cache, spec.path) if chosen == host_platform() else None
    _print_plan(plan, reasons(nodes, last))
    todo = plan.to_build()
    typer.echo(f"{len(todo)} of {len(plan.steps)} nodes to build" if todo else "up to date")
