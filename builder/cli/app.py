"""The `sandbox` command line (typer). Glue only: parse options, call one core function, render.

The only place that catches `BuilderError` (`_Commands.invoke`): it prints the message and
exits with the error's code (DESIGN.md §10); `--verbose` adds the traceback. It does so inside
the typer app, so typer's CliRunner sees exactly what a user sees.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from builder.actions.buildrun import (
    BuildRequest,
    EngineFactory,
    run_build,
)
from builder.actions.buildrun import applied_line as _applied_line
from builder.actions.buildrun import apply_overlay as _apply_overlay
from builder.actions.buildrun import apply_plans as _apply_plans
from builder.actions.buildrun import cache_lock as _cache_lock
from builder.actions.buildrun import print_plan as _print_plan
from builder.build import history
from builder.core import proc
from builder.core.atomic import write_atomic
from builder.core.errors import BuilderError, LockError, SpecError
from builder.core.layout import OVERLAY_FILE, default_cache_dir
from builder.model.spec import Spec, load_spec
from builder.orchestrator.risoluto import EXAMPLE_URL, TOKEN_ENV
from builder.store.cache import Cache

if TYPE_CHECKING:
    from builder.model.lockfile import Lock


class _Commands(TyperGroup):
    """The app's command group: a BuilderError from any command becomes its message and code."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context, not exported
        try:
            return super().invoke(ctx)
        except BuilderError as exc:
            if _options.verbose:
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


def _check_platform(value: str | None) -> str | None:
    from builder.core.patterns import platform

    problem = platform(value) if value is not None else None
    if problem:
        msg = f"{value!r} {problem}"
        raise typer.BadParameter(msg)
    return value


PlatformOption = Annotated[
    str | None,
    typer.Option(
        "--platform",
        metavar="OS/ARCH",
        callback=_check_platform,
        help="Which platform of the lock (linux/amd64, linux/arm64) \\[default: this machine's].",
    ),
]


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


@app.command()
def init(
    force: Annotated[bool, typer.Option(help="Overwrite an existing sandbox.toml.")] = False,
) -> None:
    """Write a commented starter sandbox.toml."""
    from builder.cli.starter import STARTER

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

    spec = _options.spec()
    path = lockfile.lock_path(spec.path)
    if names and not update:
        msg = f"names go with --update, e.g. `sandbox lock --update {names[0]}`"
        raise typer.BadParameter(msg)
    if security and (names or not update):
        msg = "--security goes with --update alone: `sandbox lock --update --security`"
        raise typer.BadParameter(msg)
    if check:
        from builder.actions.build import check_fresh

        current = lockfile.read(path)
        _warn_floating(spec, current)
        check_fresh(spec, current, path)
        typer.echo(f"{path.name} is up to date")
        return
    from builder.build.stage import Stages
    from builder.core.progress import Progress
    from builder.lock.locking import lock_project

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
        if security:
            names = _security_names(spec, cache)
            if not names:
                typer.echo(f"no pending security updates; {path} unchanged", err=True)
                return
        engine, progress = EngineFactory(), Progress()
        new = lock_project(
            spec=spec,
            old=old,
            update=(names or []) if update else None,
            cache=cache,
            engine=engine,
            progress=progress,
            stage=Stages(
                cache=cache, engine=engine, progress=progress, project_dir=spec.project_dir
            ),
        )
    text = lockfile.dumps(new)
    changed = not path.exists() or path.read_text() != text
    if changed:
        write_atomic(path, text.encode())
    state = "wrote" if changed else "unchanged:"
    typer.echo(f"{state} {path} ({time.monotonic() - started:.1f}s)", err=True)
    _warn_floating(spec, new)


def _security_names(spec: Spec, cache: Cache) -> list[str]:
    """The apt packages `lock --update --security` moves (those `outdated` flags)."""
    from builder.actions.build import fresh_lock
    from builder.build.stage import Stages
    from builder.core.progress import Progress
    from builder.lock.outdated import pending_security

    current = fresh_lock(spec)
    engine, progress = EngineFactory(), Progress()
    stage = Stages(cache=cache, engine=engine, progress=progress, project_dir=spec.project_dir)
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
    platform: PlatformOption = None,
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
    )


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
    platform: PlatformOption = None,
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
) -> None:
    run_build(
        BuildRequest(
            spec_file=_options.spec_file,
            cache_dir=_options.cache_dir,
            as_json=as_json,
            jobs=jobs,
            overlay=overlay,
            push=push,
            explain=explain,
            apply=apply,
            platform=platform,
        )
    )


class GraphFormat(StrEnum):
    text = "text"
    dot = "dot"
    mermaid = "mermaid"


@app.command()
def graph(
    fmt: Annotated[GraphFormat, typer.Option("--format", help="Output format.")] = GraphFormat.text,
    platform: PlatformOption = None,
) -> None:
    """Show the layer graph: each node and the nodes it is built on.

    The graph is the same on every platform; with `--platform` and a fresh lock, the text
    form also gives each node's key on that platform.
    """
    from builder.model.graph import build_graph, render

    spec = _options.spec()
    text = render(build_graph(spec), fmt.value)
    if platform is not None:
        text = _keyed(spec, text, _listed_platform(spec, platform)) if fmt == "text" else text
    typer.echo(text, nl=False)


def _listed_platform(spec: Spec, platform: str | None) -> str:
    """`platform` (else this machine's), refused unless [image].platforms lists it."""
    from builder.core.platforms import host_platform

    chosen = platform or host_platform()
    if platform is not None and chosen not in spec.image.platforms:
        msg = (
            f"{spec.path}: [image].platforms does not list {chosen}; add it and run `sandbox lock`"
        )
        raise SpecError(msg)
    return chosen


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


@app.command()
def status(platform: PlatformOption = None) -> None:
    """What `build` would do, from the lock and the cache alone (no Docker, no network)."""
    from builder.actions.build import fresh_lock
    from builder.build.explain import reasons
    from builder.build.plan import make_plan
    from builder.core.platforms import host_platform

    spec = _options.spec()
    chosen = _listed_platform(spec, platform)
    lock_ = fresh_lock(spec)
    cache = Cache(_options.cache_dir or default_cache_dir(spec.path))
    nodes = lock_.nodes(chosen)
    plan = make_plan(nodes, cache.entry)
    # The build history (what changed since the last build) is the host's builds'.
    last = history.load(cache, spec.path) if chosen == host_platform() else None
    _print_plan(plan, reasons(nodes, last))
    todo = plan.to_build()
    typer.echo(f"{len(todo)} of {len(plan.steps)} nodes to build" if todo else "up to date")


@app.command()
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
    from builder.build.stage import Stages
    from builder.core.progress import Progress
    from builder.lock.outdated import outdated_project

    spec = _options.spec()
    lock_ = fresh_lock(spec)
    cache = _options.cache()
    with _cache_lock(cache, "sandbox command"):
        engine, progress = EngineFactory(), Progress()
        report = outdated_project(
            spec=spec,
            lock=lock_,
            cache=cache,
            engine=engine,
            progress=progress,
            stage=Stages(
                cache=cache, engine=engine, progress=progress, project_dir=spec.project_dir
            ),
            platform=_listed_platform(spec, platform),
        )
    if as_json:
        typer.echo(json.dumps(report.to_json(every=every), indent=2))
    else:
        typer.echo(report.table(every=every), nl=False)
        typer.echo(report.summary())
    if report.security:
        raise typer.Exit(1)


class SbomFormat(StrEnum):
    spdx = "spdx"
    cyclonedx = "cyclonedx"


@app.command()
def sbom(
    fmt: Annotated[
        SbomFormat,
        typer.Option("--format", help="spdx: SPDX 2.3 JSON; cyclonedx: CycloneDX 1.5 JSON."),
    ] = SbomFormat.spdx,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", metavar="PATH", help="Write it to PATH, not stdout."),
    ] = None,
    platform: PlatformOption = None,
) -> None:
    """Print the bill of materials of the image sandbox.lock describes (no Docker needed).

    Every pinned package of every layer: apt packages, runtimes, pip and npm tools' full
    closures, binary tools, deps lockfiles, each with version, purl, checksum and the node
    (and key) of its layer. Same lock, same bytes. `sandbox build` also writes the SPDX one
    to cache/sbom.spdx.json and labels the image dev.sandbox-builder.sbom with its digest.
    Example: `sandbox sbom --format cyclonedx -o bom.cdx.json`.
    """
    from builder.actions.build import fresh_lock
    from builder.sbom import make_sbom, render, write_sbom

    spec = _options.spec()
    chosen = _listed_platform(spec, platform)
    lock_ = fresh_lock(spec)
    data = render(make_sbom(lock_, image=spec.image.name, platform=chosen, fmt=fmt.value))
    if output is None:
        typer.echo(data.decode(), nl=False)
        return
    write_sbom(data, output.absolute())
    typer.echo(f"wrote {output} ({fmt.value})", err=True)


@app.command()
def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be removed.")
    ] = False,
) -> None:
    """Remove cache entries, layers and images that no current build uses.

    Keeps this project's locked nodes and every other project's last build in the same cache
    dir; removes older images of this project, build-environment images and step containers
    left by killed builds. The user-wide store shared by all your projects
    ($SANDBOX_STORE_DIR, else ~/.cache/sandbox-builder/store) is left alone: delete that
    folder to clear it.
    """
    from builder.actions.gc import collect
    from builder.core.progress import human_size
    from builder.model import lockfile

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
    uid: Annotated[
        str | None,
        typer.Option(
            "--uid",
            metavar="UID[:GID]",
            help="The uid Risoluto runs as (0 as root, 1000:1000 in its own image) "
            "[default: an arbitrary 12345].",
        ),
    ] = None,
) -> None:
    """Prove the built image runs as the orchestrator runs it and meets the security baseline.

    Runs the image as Risoluto would spawn an agent from the overlay (its uid, HOME on a
    fresh volume, --cap-drop=ALL, no-new-privileges, and for an egress allowlist NET_ADMIN
    and its entrypoint's iptables rules), then bash, base64, git, each runtime and tool; and
    checks: non-root user, no exposed port, no setuid file but [image].allow_setuid, no host
    CA certificate, .netrc or credential in any layer. Exits 5 when a check fails.
    """
    from builder.actions.build import fresh_lock
    from builder.check.baseline import check_project
    from builder.check.report import render_table
    from builder.check.spawn import parse_uid
    from builder.core.errors import CheckError
    from builder.core.platforms import host_platform

    user = parse_uid(uid) if uid is not None else None
    spec = _options.spec()
    lock_ = fresh_lock(spec)
    cache = _options.cache()
    with _cache_lock(cache, "sandbox command"):
        report = check_project(
            spec=spec,
            nodes=lock_.nodes(host_platform()),
            cache=cache,
            engine=EngineFactory()(),
            image=image,
            environ=os.environ,
            user=user,
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
    """Check the machine: Docker, debootstrap, the CA bundle, the cache dir, the store."""
    from builder.actions.doctor import run_checks

    checks = run_checks(_options.spec_file, _options.cache_dir, EngineFactory())
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        typer.echo(f"  {mark} {check.name:<14} {check.detail}")
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@overlay_app.command("show")
def overlay_show(
    as_json: Annotated[
        bool,
        typer.Option("--json", help="One object: the overlay, the keys it sets, what it removes."),
    ] = False,
    url: Annotated[
        str | None,
        typer.Option(
            "--url", metavar="URL", help="What applying to URL removes [default: every URL]."
        ),
    ] = None,
) -> None:
    """Print the overlay the last build wrote; on stderr, what applying it sets and removes
    on each Risoluto an earlier apply recorded."""
    cache_root = _options.cache_dir or default_cache_dir(_options.spec_file)
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


@overlay_app.command("apply")
def overlay_apply(
    url: Annotated[
        str, typer.Argument(metavar="URL", help=f"Risoluto's address, e.g. {EXAMPLE_URL}.")
    ],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print what it would set and remove; send nothing."),
    ] = False,
) -> None:
    """PUT the last build's overlay to Risoluto at URL and read it back to confirm.

    Keys an earlier apply to URL set and this overlay no longer holds are DELETEd first;
    Risoluto's other settings stay. Needs $RISOLUTO_WRITE_TOKEN when Risoluto has a write
    token.
    """
    cache_root = _options.cache_dir or default_cache_dir(_options.spec_file)
    path = cache_root / OVERLAY_FILE
    if dry_run:
        from builder.orchestrator.overlay import check_types
        from builder.orchestrator.risoluto import read_overlay

        check_types(read_overlay(path), str(path))
        [plan] = _apply_plans(path, cache_root, url)
        for line in plan.lines(would=True):
            typer.echo(line)
        return
    typer.echo(
        _applied_line(path, _apply_overlay(path, url, after_build=False, cache_root=cache_root))
    )


def main() -> None:
    """Entry point: run the app (whose group turns BuilderErrors into messages and codes)."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted: nothing half-written was kept; run the command again", err=True)
        sys.exit(130)
