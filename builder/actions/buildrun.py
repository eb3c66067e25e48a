"""`sandbox build` and `sandbox publish` from parsed options to printed result, without typer.

The CLI (cli/app.py, typer) and the quick entry point (entry.py, which runs a plain
`sandbox build` without importing typer) both call `run_build`, so the two paths cannot
drift apart. Also here: what several commands share around a build (the cache lock, the
plan printout, applying the overlay after a build). Output goes to stdout/stderr with
`print`, never through typer.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from builder.core.errors import OverlayError
from builder.core.layout import OVERLAY_FILE, project_cache_dir
from builder.engine.choice import EngineFactory
from builder.store.cache import Cache

if TYPE_CHECKING:
    from builder.actions.build import BuildResult
    from builder.model.spec import Spec
    from builder.orchestrator.applied import ApplyPlan
    from builder.orchestrator.risoluto import ApplyResult
    from builder.realize.plan import BuildPlan


def open_cache(spec_file: Path, cache_dir: Path | None) -> Cache:
    cache = Cache(project_cache_dir(spec_file, cache_dir))
    cache.ensure()
    return cache


@contextmanager
def cache_lock(cache: Cache, what: str) -> Iterator[None]:
    """Hold the cache's lock (flock(2) on cache/.lock, released by the kernel however the
    process ends), telling the user when another build holds it."""
    with cache.lock_file.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another {what} using {cache.root} ...", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            cache.clear_scratch()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True, kw_only=True)
class BuildRequest:
    spec_file: Path
    cache_dir: Path | None = None
    as_json: bool = False
    jobs: int = 2
    overlay: Path | None = None
    push: bool = False
    explain: bool = False
    apply: str | None = None
    platform: str | None = None  # another platform of the lock than the host's (emulated)
    progress: str = "auto"  # auto | plain | tty (core/liveprogress.py)


def run_build(request: BuildRequest) -> None:
    """Build (and with `push`, publish), then print the result: JSON or a few lines."""
    from builder.actions.build import build_project, fresh_lock, remote_for
    from builder.core.liveprogress import progress_for
    from builder.model.specfile import load_spec
    from builder.realize import history

    if request.apply is not None:
        from builder.orchestrator.risoluto import check_url

        check_url(request.apply)  # a typo fails now, not after the build
    if request.push:
        from builder.publish.signing import signer_from

        signer_from(os.environ)  # a signing key that cannot be read fails now, not after a push
    spec = load_spec(request.spec_file)
    lock = fresh_lock(spec)
    cache = open_cache(request.spec_file, request.cache_dir)
    started = time.monotonic()
    progress = progress_for(request.progress)
    from builder.core.platforms import host_platform

    native = request.platform in (None, host_platform())
    with cache_lock(cache, "build"):
        if request.explain:
            from builder.kinds import KINDS
            from builder.realize.explain import reasons
            from builder.realize.plan import make_plan

            nodes = lock.nodes(request.platform or host_platform())
            plan = make_plan(nodes, cache.entry)
            last = history.load(cache, spec.path) if native else None  # the host's builds
            print_plan(plan, reasons(nodes, last), KINDS.placement(nodes), err=True)
        with progress:
            result = build_project(
                spec=spec,
                lock=lock,
                cache=cache,
                engine=EngineFactory(),
                progress=progress,
                jobs=request.jobs,
                overlay_path=(
                    request.overlay.absolute() if request.overlay else cache.root / OVERLAY_FILE
                ),
                remote=remote_for(spec, cache),
                push=request.push,
                platform=request.platform,
            )
    progress.summary(result.nodes, time.monotonic() - started)
    if native:  # the no-op replay answers plain builds of the host's platform only
        _record_noop(request, spec, cache, result)
    applied = None
    if request.apply is not None:
        from builder.actions.attest import require_signature

        require_signature(spec=spec, lock=lock, overlay=result.overlay_path)
        applied = apply_overlay(
            result.overlay_path, request.apply, after_build=True, cache_root=cache.root
        )
    if request.as_json:
        out = result.to_json()
        if applied is not None:
            out["applied"] = applied.to_json()
        print(json.dumps(out, indent=2))
        return
    print(result.text())
    if applied is not None:
        print(applied_line(result.overlay_path, applied))


def _record_noop(request: BuildRequest, spec: Spec, cache: Cache, result: BuildResult) -> None:
    """What the next plain build prints if nothing changes, for `noop.replay` to print.

    Whatever this build was (a publish, another overlay path), the record is of a plain
    build: the overlay it would write is kept in the record, and the replay writes it back
    if this build (or anybody) left another there."""
    from builder.core.progress import Progress, summary_table
    from builder.image import noop
    from builder.model.lockfile import lock_path

    overlay = cache.root / OVERLAY_FILE
    again = result.as_noop(overlay)
    lines = io.StringIO()
    said = Progress(lines)
    for n in again.nodes:
        said.done(n.name, n.status, n.seconds, n.entry)
    noop.record(
        spec_file=request.spec_file,
        cache_dir=cache.root,
        inputs=[*spec.files(), lock_path(spec.path)],
        outputs=result.files,
        overlay=(overlay, result.plain_overlay),
        image_id=result.local_ref,
        tags=result.tags,
        stderr=lines.getvalue() + summary_table(again.nodes),
        text=again.text(),
        as_json=again.to_json(),
    )


def print_plan(
    plan: BuildPlan,
    why: dict[str, list[str]],
    where: Mapping[str, list[str]] | None = None,
    *,
    err: bool = False,
) -> None:
    """One line per node: cached, or build and which inputs changed since the last build;
    then where its parts are made when its kind says (`Kind.placement`)."""
    out = sys.stderr if err else sys.stdout
    for step in plan.steps:
        name = step.node.name
        if step.action.value == "cached":
            lines = []
            print(f"  cached  {name}", file=out)
        else:
            first, *lines = why.get(name) or ["not in the cache"]
            print(f"  build   {name:<24} {first}", file=out)
        for line in [*lines, *(where or {}).get(name, [])]:
            print(f"          {'':<24} {line}", file=out)


def apply_plans(path: Path, cache_root: Path, url: str | None) -> list[ApplyPlan]:
    """What applying the overlay at `path` sets and removes, as this checkout recorded it
    (no server is asked): on `url`, else on each URL an earlier apply from here recorded."""
    from builder.orchestrator import applied
    from builder.orchestrator.risoluto import check_url, read_overlay

    overlay = read_overlay(path)
    record = applied.load(cache_root)
    urls = [check_url(url)] if url is not None else sorted(record)
    return [applied.plan(overlay, base, stored=None, here=record.get(base)) for base in urls]


def preview_apply(path: Path, url: str, *, cache_root: Path) -> ApplyPlan:
    """What `overlay apply` of the overlay at `path` would do at `url`, asking the server."""
    from builder.orchestrator import applied
    from builder.orchestrator.risoluto import TOKEN_ENV, check_url, preview, read_overlay

    here = applied.load(cache_root).get(check_url(url))
    token = os.environ.get(TOKEN_ENV)
    return preview(read_overlay(path), url, token=token, source=str(path), here=here)


def apply_overlay(path: Path, url: str, *, after_build: bool, cache_root: Path) -> ApplyResult:
    """Apply the overlay at `path` to Risoluto at `url`, removing what an earlier apply set
    there and this overlay dropped (builder/orchestrator/applied.py); record here what it set."""
    from builder.orchestrator import applied
    from builder.orchestrator.overlay import leaves
    from builder.orchestrator.risoluto import TOKEN_ENV, check_url, read_overlay
    from builder.orchestrator.risoluto import apply_overlay as apply

    try:
        overlay = read_overlay(path)
        base = check_url(url)
        sent = {".".join(key): value for key, value in leaves(overlay)}
        return apply(
            overlay,
            base,
            token=os.environ.get(TOKEN_ENV),
            source=str(path),
            here=applied.load(cache_root).get(base),
            stored=lambda: applied.remember(cache_root, base, sent),
        )
    except OverlayError as exc:
        if not after_build:
            raise
        stop = "" if str(exc).endswith((".", "?")) else "."
        msg = (
            f"{exc}{stop} The image is built and {path} written: once that is fixed, "
            f"`sandbox overlay apply {url}` applies it"
        )
        raise OverlayError(msg) from exc


def applied_line(path: Path, applied: ApplyResult) -> str:
    what = "applied" if applied.updated else "already applied (unchanged)"
    image = f"image {applied.image}, " if applied.image else ""
    removed = f"; removed {', '.join(applied.removed)}" if applied.removed else ""
    left = (
        f"; left {', '.join(applied.left)} (changed on the server since an earlier apply "
        "set it: no longer ours)"
        if applied.left
        else ""
    )
    return (
        f"{what}: {path} to Risoluto at {applied.url} "
        f"({image}{len(applied.confirmed)} keys confirmed{removed}{left})"
    )
