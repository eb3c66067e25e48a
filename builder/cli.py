"""The `sandbox` command line (typer). Glue only: parse options, call one core function, render.

The only place that catches `BuilderError`: it prints the message and exits with the error's
code (DESIGN.md §10); `--verbose` adds the traceback.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from builder import proc
from builder.cache import Cache, default_cache_dir
from builder.engine import Engine
from builder.errors import BuilderError, LockError, SpecError
from builder.spec import Spec, load_spec

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
overlay_app = typer.Typer(help="Show the orchestrator overlay of the last build.")
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
        check_fresh(spec, lockfile.read(path), path)
        typer.echo(f"{path.name} is up to date")
        return
    from builder.locking import lock_project
    from builder.progress import Progress

    old = None
    if path.exists():
        try:
            old = lockfile.read(path)
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


@app.command()
def build(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout (DESIGN.md §12).")
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Nodes built at once.")] = 2,
    overlay: Annotated[
        Path | None, typer.Option(help="Also write the overlay here [default: cache/overlay.json].")
    ] = None,
) -> None:
    """Build the image from sandbox.lock, reusing every layer whose inputs did not change."""
    from builder import lockfile
    from builder.build import build_project, check_fresh
    from builder.progress import Progress

    spec = _options.spec()
    path = lockfile.lock_path(spec.path)
    lock_ = lockfile.read(path)
    check_fresh(spec, lock_, path)
    cache = _options.cache()
    started = time.monotonic()
    with _cache_lock(cache, "build"):
        result = build_project(
            spec=spec,
            lock=lock_,
            cache=cache,
            engine=EngineFactory(),
            progress=Progress(),
            jobs=jobs,
            overlay_path=overlay.absolute() if overlay else cache.root / "overlay.json",
        )
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    built = sum(1 for n in result.nodes if n.status == "built")
    typer.echo(
        f"image {result.image_id}\n  tags: {', '.join(result.tags)}\n"
        f"  overlay: {result.overlay_path}\n"
        f"{built} of {len(result.nodes)} nodes built in {time.monotonic() - started:.1f}s"
    )


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
    from builder.locking import host_platform
    from builder.plan import make_plan

    spec = _options.spec()
    path = lockfile.lock_path(spec.path)
    lock_ = lockfile.read(path)
    check_fresh(spec, lock_, path)
    cache = Cache(_options.cache_dir or default_cache_dir(spec.path))
    plan = make_plan(lock_.nodes(host_platform()), cache.entry)
    for step in plan.steps:
        typer.echo(f"  {step.action.value:<7} {step.node.name:<24} {step.node.key[:19]}")
    todo = plan.to_build()
    typer.echo(f"{len(todo)} of {len(plan.steps)} nodes to build" if todo else "up to date")


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
