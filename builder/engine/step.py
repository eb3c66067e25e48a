"""One step: a script run in a container of a stage, with what every step gets mounted.

A stage is the image of a node's ancestors stacked (`StepContext.stage` gives it: the build's
executor, or the stages lock is handed). Every step gets the host CA bundle (mounted, never in
a layer, and pointed at by the variables tools read), its input files read-only under
INPUT_DIR, the network bounds of `core.limits`, and, when the client is not root, its writable
folders handed back. Recipes (build) and resolvers (lock) run their scripts through it.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from builder.core import limits, space
from builder.core.certs import ca_bundle
from builder.core.errors import BuilderError, BuildError
from builder.engine.interface import Engine, Mount, RunResult, kept_container, require_success
from builder.store.cache import Cache

# Where the host CA bundle appears inside build containers: a scratch path, so the mount
# point never reaches a layer, and not the system bundle, which ca-certificates rewrites.
CA_IN_CONTAINER = "/tmp/sandbox-builder-ca.crt"
# Where a step's input files (lockfiles, requirement lists) appear, read-only.
INPUT_DIR = "/tmp/sandbox-builder-input"


@dataclass(frozen=True, kw_only=True)
class StepContext:
    cache: Cache
    engine: Callable[[], Engine]
    platform: str
    epoch: int
    stage: Callable[[str], str]  # node name -> image ID of its ancestors' layers stacked
    project_dir: Path  # the folder holding sandbox.toml (for `path` archives and deps)
    # node name -> the layer tars below it, bottom first (None: not known, as when locking)
    below: Callable[[str], list[Path]] | None = None
    # one line for the user about how the step goes (the build's progress; None: nobody asks)
    say: Callable[[str], None] | None = None


def tls_mounts_and_env() -> tuple[list[Mount], dict[str, str]]:
    """The host CA bundle as a build-time mount, and the variables that point tools at it."""
    bundle = ca_bundle()
    if bundle is None:
        return [], {}
    env = {
        name: CA_IN_CONTAINER
        for name in (
            "SSL_CERT_FILE",
            "REQUESTS_CA_BUNDLE",
            "PIP_CERT",
            "NODE_EXTRA_CA_CERTS",
            "npm_config_cafile",
        )
    }
    return [Mount(source=str(bundle), target=CA_IN_CONTAINER)], env


def download_cache_mount(cache: Cache, tool: str, target: str) -> Mount:
    """A shared, writable download cache (pip's, npm's) kept under the cache dir; on an
    engine that cannot see it, an engine-owned volume named after `tool`."""
    folder = cache.downloads / tool
    folder.mkdir(parents=True, exist_ok=True)
    return Mount(
        source=str(folder),
        target=target,
        read_only=False,
        cache=tool,
        setting=space.DOWNLOAD_SETTING,
    )


@contextmanager
def run_in_stage(
    ctx: StepContext,
    name: str,
    script: str,
    *,
    what: str,
    env: dict[str, str] | None = None,
    mounts: list[Mount] | None = None,
    files: dict[str, str] | None = None,
    network: bool = True,
    error: type[BuilderError] = BuildError,
) -> Iterator[RunResult]:
    """Run `script` in a container of node `name`'s ancestors, kept for the `with` block.

    `files` (name -> text) are handed in read-only under INPUT_DIR, so lockfiles of any size
    never pass through the command line. The host CA bundle is always mounted (and pointed
    at) so TLS works behind proxies that re-sign it; pip, npm, pnpm and uv get the network
    bounds of limits.py. A failing script fails the step with the
    tail of its log.
    """
    tls_mounts, tls_env = tls_mounts_and_env()
    engine = ctx.engine()
    log = ctx.cache.log_path(name)
    work = ctx.cache.scratch(f"{name}-input-")
    try:
        for filename, text in (files or {}).items():
            (work / filename).write_text(text)
        work.chmod(0o755)
        all_mounts = [*tls_mounts, Mount(source=str(work), target=INPUT_DIR), *(mounts or [])]
        result = engine.run(
            image=ctx.stage(name),
            script=hand_back(all_mounts) + script,
            log=log,
            env={
                **limits.tool_env(),
                **tls_env,
                "SOURCE_DATE_EPOCH": str(ctx.epoch),
                **(env or {}),
            },
            mounts=all_mounts,
            network=network,
        )
        with kept_container(engine, result):
            require_success(result, what=what, log=log, error=error)
            yield result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def hand_back(mounts: list[Mount]) -> str:
    """Shell that gives the client back, however the script ends, what the step (as root)
    wrote into the client's writable folders, when the client is not root: else its own
    cache and scratch trees hold files it can neither read nor remove. Owners in a layer
    never come from there (`tar_directory` packs as root)."""
    uid, gid = os.getuid(), os.getgid()
    writable = [m.target for m in mounts if not m.read_only]
    if uid == 0 or not writable:
        return ""
    targets = " ".join(shlex.quote(t) for t in writable)
    return f"trap 'chown -hR {uid}:{gid} {targets} 2>/dev/null || true' EXIT\n"
