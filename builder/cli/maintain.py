"""`sandbox gc` and `doctor`: the cache dir and the machine."""

from __future__ import annotations

from typing import Annotated

import typer

from builder.actions.buildrun import cache_lock as _cache_lock
from builder.cli.options import dry_run_flag, engine_factory, options
from builder.kinds import KINDS


def gc(
    dry_run: Annotated[bool, dry_run_flag("Only say what would be removed.")] = False,
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

    spec = options.spec()
    lock_ = lockfile.read(lockfile.lock_path(spec.path), KINDS)
    cache = options.cache()
    with _cache_lock(cache, "gc"):
        result = collect(
            cache=cache,
            spec_path=spec.path,
            image_name=spec.image.name,
            lock=lock_,
            engine=engine_factory()(),
            dry_run=dry_run,
        )
    verb = "would free" if dry_run else "freed"
    typer.echo(
        f"{verb} {human_size(result.freed)}: {result.entries} cache entries, "
        f"{result.layers} layers, {len(result.images)} images, {result.containers} containers"
    )
    if result.in_use:
        typer.echo(
            f"kept {len(result.in_use)} images a running container uses "
            "(another build's step?): run `sandbox gc` again once it is done"
        )


def doctor() -> None:
    """Check the machine: Docker, debootstrap, the CA bundle, the cache dir, the store."""
    from builder.actions.doctor import run_checks

    checks = run_checks(options.spec_file, options.cache_dir, engine_factory())
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        typer.echo(f"  {mark} {check.name:<14} {check.detail}")
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
