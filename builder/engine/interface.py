"""The engine interface the rest of the tool uses, and the values that cross it.

`Engine` is the protocol every stage talks to (`docker.DockerEngine` implements it; unit tests
substitute a recording fake); `Mount`, `Confinement`, `RunResult` and `ImageInfo` are what
goes in and comes out. `in_step` names the step an engine's refusal belongs to;
`kept_container` and `require_success` are what a caller does with a step's result.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from builder.core import limits, space
from builder.core.errors import BuilderError, BuildError

# The step the engine is working for, per thread (the executor builds nodes in parallel).
STEP: ContextVar[str] = ContextVar("sandbox_builder_step", default="")


@contextlib.contextmanager
def in_step(name: str) -> Iterator[None]:
    """Name the step (`runtime.node`, `lock system`, `check`) that the engine's refusals
    inside the block belong to."""
    token = STEP.set(name)
    try:
        yield
    finally:
        STEP.reset(token)


@dataclass(frozen=True, kw_only=True)
class Mount:
    """A file or folder of ours at `target` in a container.

    Where the engine sees our filesystem it is a bind mount. Where it does not, the engine
    copies it in before the step starts and, when writable, back out after it ends; a
    download cache (`cache` names it) is an engine-owned volume of that name instead.
    """

    source: str
    target: str
    read_only: bool = True
    cache: str = ""
    setting: str = ""  # what moves `source` elsewhere, named when its disk fills


@dataclass(frozen=True, kw_only=True)
class Confinement:
    """How a checked container runs, in `docker run` terms (spawn.py fills it in as the
    orchestrator would). `home`: a fresh named volume mounted there, first chowned to `user`
    by a helper container of the same image running as root; `network` None is Docker's
    default bridge."""

    user: str
    workdir: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    home: str | None = None
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    cap_drop: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    runtime: str | None = None
    network: str | None = None
    extra_hosts: Mapping[str, str] = field(default_factory=dict)
    memory: str | None = None
    memory_reservation: str | None = None
    memory_swap: str | None = None
    cpus: float | None = None


@dataclass(frozen=True, kw_only=True)
class RunResult:
    container: str
    exit_code: int
    stopped_after: float | None = None  # seconds, when the step limit stopped it
    # Where a failed step's writes went, to tell which disk filled: each folder of ours it
    # wrote straight into (target -> our folder, the setting moving it), and the engine's
    # storage, where the container's own files live.
    bound: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    storage: str = ""


class Engine(Protocol):
    def ping(self) -> str: ...
    def image_id(self, ref: str) -> str | None: ...
    def find_image(
        self, config_digest: str, *, tag: str, diff_ids: list[str], labels: Mapping[str, str]
    ) -> str | None: ...
    def image_env(self, ref: str) -> list[str]: ...
    def registry_digest(self, ref: str, platform: str) -> str: ...
    def pull(self, ref: str, platform: str) -> str: ...
    def save(self, ref: str, dest: Path) -> None: ...
    def load(self, archive: Iterable[bytes]) -> None: ...
    def tag(self, image: str, repository: str, tag: str) -> None: ...
    def run(
        self,
        *,
        image: str,
        script: str,
        log: Path,
        env: Mapping[str, str],
        mounts: list[Mount],
        network: bool,
    ) -> RunResult: ...
    def commit(self, container: str) -> str: ...
    def changes(self, container: str) -> list[str]: ...
    def upper_dir(self, container: str) -> Path | None: ...
    def layer_stacks(
        self, label: str, known: Mapping[str, tuple[str, ...]]
    ) -> dict[str, tuple[str, ...]]: ...
    def inspect(self, ref: str) -> dict[str, Any]: ...
    def runtimes(self) -> list[str]: ...
    def run_confined(
        self, *, image: str, command: Sequence[str], confinement: Confinement, timeout: float
    ) -> tuple[int, str]: ...
    def remove_container(self, container: str) -> None: ...
    def remove_image(self, image: str) -> None: ...
    def images(self, label: str) -> list[ImageInfo]: ...
    def containers(self, label: str) -> list[str]: ...


@dataclass(frozen=True, kw_only=True)
class ImageInfo:
    id: str
    tags: tuple[str, ...]
    size: int


@contextlib.contextmanager
def kept_container(engine: Engine, result: RunResult) -> Iterator[RunResult]:
    """Remove the step's container however the block ends."""
    try:
        yield result
    finally:
        engine.remove_container(result.container)


def require_success(
    result: RunResult, *, what: str, log: Path, error: type[BuilderError] = BuildError
) -> None:
    if result.stopped_after is not None:
        raise error(limits.stalled(what, seconds=result.stopped_after, log=log))
    if result.exit_code != 0:
        output = log.read_text(errors="replace").strip()
        full = space.step_full(
            output, what=what, log=log, bound=result.bound, storage=result.storage or "the engine"
        )
        if full is not None:
            raise full
        lines = output.splitlines()[-20:]
        tail = "\n".join("    " + line for line in lines)
        msg = f"{what} failed with exit {result.exit_code}:\n{tail}\n  full log: {log}"
        if _TIMED_OUT.search("\n".join(lines)) and limits.NET_TIMEOUT_ENV not in tail:
            msg += f"\n  {limits.network_hint()}"
        raise error(msg)


# How pip, npm, pnpm and uv say a request got no answer in time (urllib3's ReadTimeoutError,
# Node's ETIMEDOUT, npm's "Response timeout while trying to fetch", uv's "operation timed out").
_TIMED_OUT = re.compile(r"timed out|timeout|ETIMEDOUT|ESOCKETTIMEDOUT", re.IGNORECASE)
