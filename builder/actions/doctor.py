"""`sandbox doctor`: is this machine ready to lock and build?"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder.core.certs import ca_bundle
from builder.core.errors import BuilderError
from builder.core.layout import CACHE_TMP, project_cache_dir
from builder.engine.interface import Engine
from builder.store.cache import Cache


@dataclass(frozen=True, kw_only=True)
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(
    spec_file: Path, cache_dir: Path | None, engine: Callable[[], Engine]
) -> list[Check]:
    checks = []
    try:
        version = engine().ping()
        checks.append(Check(name="docker", ok=True, detail=f"engine {version} reachable"))
    except BuilderError as exc:
        checks.append(Check(name="docker", ok=False, detail=str(exc)))
    found = shutil.which("debootstrap")
    checks.append(
        Check(
            name="debootstrap",
            ok=found is not None,
            detail=found or "missing: apt-get install -y debootstrap (needed for [base].bootstrap)",
        )
    )
    bundle = ca_bundle()
    checks.append(
        Check(
            name="ca-bundle",
            ok=bundle is not None,
            detail=str(bundle) if bundle else "no CA bundle: apt-get install -y ca-certificates",
        )
    )
    cache = Cache(project_cache_dir(spec_file, cache_dir))
    try:
        cache.ensure()
        probe = cache.root / CACHE_TMP / ".doctor"
        probe.write_text("ok")
        probe.unlink()
        free = shutil.disk_usage(cache.root).free
        checks.append(
            Check(name="cache", ok=True, detail=f"{cache.root} writable, {free / 1e9:.1f} GB free")
        )
    except (BuilderError, OSError) as exc:
        checks.append(Check(name="cache", ok=False, detail=str(exc)))
    checks.append(store_check(cache.store))
    checks.extend(emulation_checks())
    return checks


def emulation_checks() -> list[Check]:
    """Whether each other platform's images can be built here (QEMU user emulation): a note,
    never a failure, since locking them needs none."""
    from builder.core.patterns import PLATFORMS
    from builder.core.platforms import host_platform
    from builder.engine.emulation import SETUP, emulation

    checks = []
    for platform in PLATFORMS:
        if platform == host_platform():
            continue
        found = emulation(platform)
        detail = (
            f"{platform} builds here under {found.detail}"
            if found.available
            else f"{platform} cannot build here ({found.detail}): {SETUP}"
        )
        checks.append(Check(name="emulation", ok=True, detail=detail))
    return checks


def store_check(store: Path) -> Check:
    """The user-wide store of built nodes: optional, so never a failure, only a note."""
    try:
        (store / CACHE_TMP).mkdir(parents=True, exist_ok=True)
        probe = store / CACHE_TMP / f".doctor-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        detail = f"{store} not writable ({exc.strerror}): builds work but share no layers"
        return Check(name="store", ok=True, detail=f"{detail}; set SANDBOX_STORE_DIR")
    return Check(name="store", ok=True, detail=f"{store} shared by all your projects")
