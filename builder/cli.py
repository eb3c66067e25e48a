"""The `sandbox` command line (typer). Glue only: parse options, call one core function, render.

The only place that catches `BuilderError`: it prints the message and exits with the error's
code (DESIGN.md §10); `--verbose` adds the traceback.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from builder import history, proc
from builder.cache import Cache, default_cache_dir
from builder.engine import Engine
from builder.errors import BuilderError, LockError, OverlayError, SpecError
from builder.plan import BuildPlan
from builder.risoluto import EXAMPLE_URL, TOKEN_ENV, ApplyResult
from builder.spec import Spec, load_spec

if TYPE_CHECKING:
    from builder.lockfile import Lock

app = typer.Typer(
    help=(
        "Lockfile builds of the Docker images AI coding agents run in.\n\n"
        "Describe the sandbox once in sandbox.toml, pin it with `sandbox lock`, build it with "
        "`sandbox build`: only layers whose inputs changed rebuild, and the orchestrator "
        "overlay pinning the image by digest is written for you."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
overlay_app = typer.Typer(help="Show the orchestrator overlay of the last build, or apply it.")
app.add_typer(overlay_app, name="overlay")


@dataclass
class Options:
    spec_file: Path
    cache_dir: Path | None
    verbose: bool

    def spec(self) -> Spec:
        return load_spec(self.spec_file)

    def cache(self) -> Cache:
        cache = Cache(self.cache_dir or default_cache_dir(self.spec_file))
        cache.ensure()
        return cache


_options = Options(spec_file=Path("sandbox.toml"), cache_dir=None, verbose=False)


@app.callback()
def _main(
    file: Annotated[
        Path, typer.Option("-f", "--file", help="The spec to work on.", show_default=True)
    ] = Path("sandbox.toml"),
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            envvar="SANDBOX_CACHE_DIR",
            help="Where layers and build state live \\[default: cache/ beside sandbox.toml].",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Echo commands; tracebacks on errors.")
    ] = False,
) -> None:
    _options.spec_file = file.absolute()
    _options.cache_dir = cache_dir.absolute() if cache_dir else None
    _options.verbose = verbose
    proc.VERBOSE = verbose


class EngineFactory:
    """Connects to Docker on first use only (graph, status and lock --check never do)."""

    def __init__(self) -> None:
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Engine:
        with self._lock:
            if self._engine is None:
                from builder.engine import DockerEngine

                self._engine = DockerEngine()
            return self._engine


@contextmanager
def _cache_lock(cache: Cache, what: str) -> Iterator[None]:
    """Hold the cache's file lock, telling the user when another build holds it."""
    from filelock import FileLock, Timeout

    lock = FileLock(cache.lock_file)
    try:
        lock.acquire(timeout=0.1)
    except Timeout:
        typer.echo(f"waiting for another {what} using {cache.root} ...", err=True)
        lock.acquire(timeout=-1)
    try:
        cache.clear_scratch()
        yield
    finally:
        lock.release()


@app.command()
def init(
    force: Annotated[bool, typer.Option(help="Overwrite an existing sandbox.toml.")] = False,
) -> None:
    """Write a commented starter sandbox.toml."""
    from builder.starter import STARTER

    path = _options.spec_file
    if path.exists() and not force:
        msg = f"{path} already exists; pass --force to overwrite it"
        raise SpecError(msg)
    path.write_text(STARTER)
    typer.echo(f"wrote {path}; next: `sandbox lock`, then `sandbox build`")


@app.command()
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
) -> None:
    """Resolve sandbox.toml into sandbox.lock: every version and digest pinned.

    A node whose request did not change keeps its pins; `--update jq` moves just jq,
    `--update` alone re-resolves everything.
    """
    from builder import lockfile
    from builder.build import check_fresh

    spec = _options.spec()
    path = lockfile.lock_path(spec.path)
    if names and not update:
        msg = f"names go with --update, e.g. `sandbox lock --update {names[0]}`"
        raise typer.BadParameter(msg)
    if check:
        current = lockfile.read(path)
        _warn_floating(spec, current)
        check_fresh(spec, current, path)
        typer.echo(f"{path.name} is up to date")
        return
    from builder.locking import lock_project
    from builder.progress import Progress

    old = None
    if path.exists():
        try:
            old = lockfile.read(path, older_recipes_ok=True)
        except LockError:
            if not update:
                raise
    cache = _options.cache()
    started = time.monotonic()
    with _cache_lock(cache, "sandbox command"):
        new = lock_project(
            spec=spec,
            old=old,
            update=(names or []) if update else None,
            cache=cache,
            engine=EngineFactory(),
            progress=Progress(),
        )
    text = lockfile.dumps(new)
    changed = not path.exists() or path.read_text() != text
    if changed:
        lockfile.write_atomic(path, text.encode())
    state = "wrote" if changed else "unchanged:"
    typer.echo(f"{state} {path} ({time.monotonic() - started:.1f}s)", err=True)
    _warn_floating(spec, new)


def _warn_floating(spec: Spec, lock_: Lock) -> None:
    """Tell reviewers what floats in sandbox.toml (pinned in the lock anyway): stderr only."""
    from builder.locking import host_platform
    from builder.pinning import floating

    nodes = lock_.platforms.get(host_platform()) or next(iter(lock_.platforms.values()), {})
    for warning in floating(spec, nodes):
        typer.echo(f"warning: {warning}", err=True)


@app.command()
def build(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout (DESIGN.md §12).")
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Nodes built at once.")] = 2,
    overlay: Annotated[
        Path | None, typer.Option(help="Also write the overlay here [default: cache/overlay.json].")
    ] = None,
    push: Annotated[
        bool, typer.Option("--push", help="Then publish to [image].registry (see `publish`).")
    ] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="First say why each node rebuilds (what changed).")
    ] = False,
    apply: Annotated[
        str | None,
        typer.Option(
            "--apply",
            metavar="URL",
            help=f"Then PUT the overlay to Risoluto at URL and confirm it (token: ${TOKEN_ENV}).",
        ),
    ] = None,
) -> None:
    """Build the image from sandbox.lock, reusing every layer whose inputs did not change.

    With [image].registry set, nodes a teammate published are pulled instead of built.
    """
    _run_build(as_json=as_json, jobs=jobs, overlay=overlay, push=push, explain=explain, apply=apply)


@app.command()
def publish(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout (DESIGN.md §12).")
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Nodes built at once.")] = 2,
    apply: Annotated[
        str | None,
        typer.Option("--apply", metavar="URL", help="Then apply the overlay to Risoluto at URL."),
    ] = None,
) -> None:
    """Build (normally all cached) and push to [image].registry: every node under its key, so
    teammates pull instead of building, and the image, pinned in the overlay by digest."""
    _run_build(as_json=as_json, jobs=jobs, overlay=None, push=True, explain=False, apply=apply)


def _run_build(
    *,
    as_json: bool,
    jobs: int,
    overlay: Path | None,
    push: bool,
    explain: bool,
    apply: str | None,
) -> None:
    from builder import lockfile
    from builder.build import build_project, check_fresh, remote_for
    from builder.explain import reasons
    from builder.locking import host_platform
    from builder.plan import make_plan
    from builder.progress import Progress
    from builder.risoluto import check_url

    if apply is not None:
        check_url(apply)  # a typo fails now, not after the build
    spec = _options.spec()
    path = lockfile.lock_path(spec.path)
    lock_ = lockfile.read(path)
    check_fresh(spec, lock_, path)
    cache = _options.cache()
    started = time.monotonic()
    progress = Progress()
    with _cache_lock(cache, "build"):
        if explain:
            nodes = lock_.nodes(host_platform())
            plan = make_plan(nodes, cache.entry)
            _print_plan(plan, reasons(nodes, history.load(cache, spec.path)), err=True)
        result = build_project(
            spec=spec,
            lock=lock_,
            cache=cache,
            engine=EngineFactory(),
            progress=progress,
            jobs=jobs,
            overlay_path=overlay.absolute() if overlay else cache.root / "overlay.json",
            remote=remote_for(spec, cache),
            push=push,
        )
    progress.summary(result.nodes, time.monotonic() - started)
    applied = None
    if apply is not None:
        applied = _apply_overlay(result.overlay_path, apply, after_build=True)
    if as_json:
        out = result.to_json()
        if applied is not None:
            out["applied"] = applied.to_json()
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(
        f"image {result.image_id}\n  ref: {result.ref}\n  tags: {', '.join(result.tags)}\n"
        f"  overlay: {result.overlay_path}"
    )
    if applied is not None:
        typer.echo(_applied_line(result.overlay_path, applied))


class GraphFormat(StrEnum):
    text = "text"
    dot = "dot"
    mermaid = "mermaid"


@app.command()
def graph(
    fmt: Annotated[GraphFormat, typer.Option("--format", help="Output format.")] = GraphFormat.text,
) -> None:
    """Show the layer graph: each node and the nodes it is built on."""
    from builder.graph import build_graph, render

    typer.echo(render(build_graph(_options.spec()), fmt.value), nl=False)


@app.command()
def status() -> None:
    """What `build` would do, from the lock and the cache alone (no Docker, no network)."""
    from builder import lockfile
    from builder.build import check_fresh
    from builder.explain import reasons
    from builder.locking import host_platform
    from builder.plan import make_plan

    spec = _options.spec()
    path = lockfile.lock_path(spec.path)
    lock_ = lockfile.read(path)
    check_fresh(spec, lock_, path)
    cache = Cache(_options.cache_dir or default_cache_dir(spec.path))
    nodes = lock_.nodes(host_platform())
    plan = make_plan(nodes, cache.entry)
    _print_plan(plan, reasons(nodes, history.load(cache, spec.path)))
    todo = plan.to_build()
    typer.echo(f"{len(todo)} of {len(plan.steps)} nodes to build" if todo else "up to date")


def _print_plan(plan: BuildPlan, why: dict[str, list[str]], *, err: bool = False) -> None:
    """One line per node: cached, or build and which inputs changed since the last build."""
    for step in plan.steps:
        name = step.node.name
        if step.action.value == "cached":
            typer.echo(f"  cached  {name}", err=err)
            continue
        lines = why.get(name) or ["not in the cache"]
        typer.echo(f"  build   {name:<24} {lines[0]}", err=err)
        for line in lines[1:]:
            typer.echo(f"          {'':<24} {line}", err=err)


@app.command()
def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be removed.")
    ] = False,
) -> None:
    """Remove cache entries, layers and images that no current build uses.

    Keeps this project's locked nodes and every other project's last build in the same cache
    dir; removes older images of this project, build-environment images and step containers
    left by killed builds.
    """
    from builder import lockfile
    from builder.gc import collect
    from builder.progress import human_size

    spec = _options.spec()
    lock_ = lockfile.read(lockfile.lock_path(spec.path))
    cache = _options.cache()
    with _cache_lock(cache, "gc"):
        result = collect(
            cache=cache,
            spec_path=spec.path,
            image_name=spec.image.name,
            lock=lock_,
            engine=EngineFactory()(),
            dry_run=dry_run,
        )
    verb = "would free" if dry_run else "freed"
    typer.echo(
        f"{verb} {human_size(result.freed)}: {result.entries} cache entries, "
        f"{result.layers} layers, {len(result.images)} images, {result.containers} containers"
    )


@app.command()
def check(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of {check, ok, detail} on stdout.")
    ] = False,
    image: Annotated[
        str | None,
        typer.Option(
            "--image", metavar="REF", help="Check this image [default: the last build's]."
        ),
    ] = None,
) -> None:
    """Prove the built image runs as the orchestrator runs it and meets the security baseline.

    Runs bash, base64, git, each runtime and tool as uid 12345 with every capability dropped,
    and checks: non-root user, no exposed port, no setuid file but [image].allow_setuid, no
    host CA certificate, .netrc or credential in any layer. Exits 5 when a check fails.
    """
    from builder import lockfile
    from builder.build import check_fresh
    from builder.check import check_project
    from builder.errors import CheckError
    from builder.locking import host_platform
    from builder.report import render_table

    spec = _options.spec()
    path = lockfile.lock_path(spec.path)
    lock_ = lockfile.read(path)
    check_fresh(spec, lock_, path)
    cache = _options.cache()
    with _cache_lock(cache, "sandbox command"):
        report = check_project(
            spec=spec,
            nodes=lock_.nodes(host_platform()),
            cache=cache,
            engine=EngineFactory()(),
            image=image,
            environ=os.environ,
        )
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in report.results], indent=2))
    else:
        typer.echo(f"image {report.image}")
        typer.echo(render_table(report.results), nl=False)
    for result in report.results:
        if result.warning:
            typer.echo(
                f"warning: {result.check}: {result.detail.removeprefix('warning: ')}", err=True
            )
    if report.failed:
        names = ", ".join(r.check for r in report.failed)
        msg = (
            f"{len(report.failed)} of {len(report.results)} checks failed in {report.image}: "
            f"{names}. Each line above says why; fix sandbox.toml or the build and rebuild"
        )
        raise CheckError(msg)
    typer.echo(f"all {len(report.results)} checks passed ({report.seconds:.1f}s)", err=True)


@app.command()
def doctor() -> None:
    """Check the machine: Docker, debootstrap, the CA bundle, the cache dir."""
    from builder.doctor import run_checks

    checks = run_checks(_options.spec_file, _options.cache_dir, EngineFactory())
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        typer.echo(f"  {mark} {check.name:<14} {check.detail}")
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@overlay_app.command("show")
def overlay_show() -> None:
    """Print the overlay the last build wrote."""
    path = (_options.cache_dir or default_cache_dir(_options.spec_file)) / "overlay.json"
    if not path.exists():
        msg = f"{path}: no overlay yet. Run `sandbox build` first"
        raise LockError(msg)
    typer.echo(path.read_text(), nl=False)


@overlay_app.command("apply")
def overlay_apply(
    url: Annotated[
        str, typer.Argument(metavar="URL", help=f"Risoluto's address, e.g. {EXAMPLE_URL}.")
    ],
) -> None:
    """PUT the last build's overlay to Risoluto at URL and read it back to confirm.

    Its other settings stay. Needs $RISOLUTO_WRITE_TOKEN when Risoluto has a write token.
    """
    path = (_options.cache_dir or default_cache_dir(_options.spec_file)) / "overlay.json"
    typer.echo(_applied_line(path, _apply_overlay(path, url, after_build=False)))


def _apply_overlay(path: Path, url: str, *, after_build: bool) -> ApplyResult:
    from builder.risoluto import apply_overlay, read_overlay

    token = os.environ.get(TOKEN_ENV)
    try:
        return apply_overlay(read_overlay(path), url, token=token)
    except OverlayError as exc:
        if not after_build:
            raise
        stop = "" if str(exc).endswith((".", "?")) else "."
        msg = (
            f"{exc}{stop} The image is built and {path} written: once that is fixed, "
            f"`sandbox overlay apply {url}` applies it"
        )
        raise OverlayError(msg) from exc


def _applied_line(path: Path, applied: ApplyResult) -> str:
    what = "applied" if applied.updated else "already applied (unchanged)"
    image = f"image {applied.image}, " if applied.image else ""
    return (
        f"{what}: {path} to Risoluto at {applied.url} "
        f"({image}{len(applied.confirmed)} keys confirmed)"
    )


def main() -> None:
    """Entry point: run the app, turning BuilderErrors into messages and exit codes."""
    try:
        app()
    except BuilderError as exc:
        if _options.verbose:
            traceback.print_exc()
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted: nothing half-written was kept; run the command again", err=True)
        sys.exit(130)
