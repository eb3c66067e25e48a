"""The engine interface the rest of the tool uses, and the values that cross it.

`Engine` is the protocol every stage talks to, what every engine can promise
(`docker.DockerEngine` implements it; unit tests substitute a recording fake); `DiffFolders`
is a faster way to a container's diff that only some engines offer, asked for through
`diff_folder`; `Mount`, `Confinement`, `RunResult` and `ImageInfo` are what goes in and comes
out. `in_step` names the step an engine's refusal belongs to;
`kept_container` and `require_success` are what a caller does with a step's result.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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
    """What `Engine.run` gives back: the step's container, kept for the caller, and how the
    script ended."""

    container: str
    exit_code: int
    stopped_after: float | None = None  # seconds, when the step limit stopped it
    # Where a failed step's writes went, to tell which disk filled: each folder of ours it
    # wrote straight into (target -> our folder, the setting moving it), and the engine's
    # storage, where the container's own files live.
    bound: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    storage: str = ""


class Engine(Protocol):
    """What every engine the tool runs on promises: Docker Engine 20.10 and later (overlay2
    or the containerd image store), Podman through its Docker-compatible API, and any of them
    on another machine (ssh://, tcp://). An engine may not see this machine's files nor let
    its storage be read here: a faster way it offers besides is a capability the caller asks
    for (`DiffFolders`, through `diff_folder`), never part of this Protocol.

    Images are named by reference (`name:tag`, `name@sha256:...`) or by ID; an image this
    tool loaded may also be named by its config digest, which the engine turns into its own
    ID (`find_image`). Every refusal of the engine leaves as a BuilderError naming the step
    (`in_step`) and the engine: EngineRefusedError (exit 5) when it answered no,
    EngineUnavailableError (exit 9) when it did not answer, CacheError (exit 6) when its own
    disk is full; a method says when it raises another. No method raises the client
    library's own exceptions. Methods may be called from several threads at once.
    """

    # -- the engine itself -------------------------------------------------------------------

    def ping(self) -> str:
        """The engine's version as it reports it (`20.10.24`, `28.2.2`, `4.3.1`): the one
        question that tells whether it answers (`sandbox doctor`)."""

    def runtimes(self) -> list[str]:
        """The OCI runtimes a container may ask for (`runc`; `runsc` where gVisor is
        installed), sorted."""

    # -- images ------------------------------------------------------------------------------

    def image_id(self, ref: str) -> str | None:
        """The engine's ID of the image `ref` names, or None when the engine lacks it (never
        an error for a missing image). Pulls nothing."""

    def find_image(
        self, config_digest: str, *, tag: str, diff_ids: list[str], labels: Mapping[str, str]
    ) -> str | None:
        """The engine's ID of the image whose config has digest `config_digest`, or None.

        An engine that cannot be asked by config digest (the containerd store names images
        by manifest digest) finds it as the image tagged `tag` whose layers are `diff_ids`
        and whose labels include `labels`. Once found, every method here accepts
        `config_digest` as a name of that image."""

    def image_env(self, ref: str) -> list[str]:
        """The `KEY=value` entries of the image's configured Env, in its order."""

    def inspect(self, ref: str) -> dict[str, Any]:
        """The image as the Docker Engine API's image inspect describes it (`Id`, `Size`,
        `Config`, `RootFS`, ...). A missing image is a BuildError saying so."""

    def registry_digest(self, ref: str, platform: str) -> str:
        """The digest (`sha256:...`) the registry holds `ref` under now: a tag's current
        manifest or index, asked through the engine (its credentials and mirrors apply);
        nothing is pulled. `platform` is the platform being locked. A name the registry
        cannot give is a ResolutionError."""

    def pull(self, ref: str, platform: str) -> str:
        """Have `platform`'s image of `ref` in the engine, pulling it if need be, and return
        its ID. Pulling what the engine has costs a round trip, no download. A registry
        that refuses or lacks it is a RegistryError."""

    def save(self, ref: str, dest: Path) -> None:
        """Write the image as a `docker save` archive (a manifest.json listing the layer
        tars, bottom first) to `dest`, replacing what was there. The caller makes room for
        it (`space.room_for`): a disk of ours filling is an OSError."""

    def load(self, archive: Iterable[bytes]) -> None:
        """Load a `docker save` archive streamed as `archive`; each tag in its manifest then
        names the image (moved from any image it named before). The archive may leave out
        the tars of its bottom layers when an image the engine holds has those layers,
        bottom first (image/loading.py). Loading an image the engine has only tags it."""

    def tag(self, image: str, repository: str, tag: str) -> None:
        """Name `image` `repository:tag`, moving the tag if it named another image;
        tagging twice is harmless."""

    def images(self, label: str) -> list[ImageInfo]:
        """The images carrying `label` (a key, or `key=value`), in no order."""

    def layer_stacks(
        self, label: str, known: Mapping[str, tuple[str, ...]]
    ) -> dict[str, tuple[str, ...]]:
        """Image ID -> its layers' diff IDs, bottom first, for every image carrying `label`.
        An ID names its layers for good: the stacks in `known` are reused, not asked for
        again. Images removed while this runs are left out."""

    def remove_image(self, image: str) -> None:
        """Remove `image` and the layers no other image holds; an image already gone is no
        error. An image a container still uses is the engine's refusal (HTTP 409)."""

    # -- containers --------------------------------------------------------------------------

    def run(
        self,
        *,
        image: str,
        script: str,
        log: Path,
        env: Mapping[str, str],
        mounts: list[Mount],
        network: bool,
    ) -> RunResult:
        """Run `script` with /bin/sh -ec as root in a new container of `image`, with `env`
        (HOME=/root unless given), `mounts` and, unless `network`, no network; its output
        goes to `log` as it arrives.

        The script failing is no error: its exit code is in the result (127 when the
        container could not start, with the engine's reason in the log), and `stopped_after`
        is set when the step limit (core/limits.py) stopped it. On return what it wrote into
        a writable mount is in our folder, and the container is kept, stopped, for the
        caller to read (`changes`, `commit`) and then remove (`kept_container`). Refusing to
        create it is an error, and then no container is left."""

    def changes(self, container: str) -> list[str]:
        """The paths (`/etc/passwd`) the container added, changed or deleted in its own
        filesystem, as `docker diff` lists them, sorted; what went into mounts is not among
        them."""

    def commit(self, container: str) -> str:
        """Make an image of the container's filesystem (its image with the container's
        changes on top as one more layer; mounts are not part of it) and return its ID. The
        caller removes it when done (`remove_image`)."""

    def containers(self, label: str) -> list[str]:
        """IDs of the stopped containers carrying `label` (a running one belongs to a build
        in progress)."""

    def remove_container(self, container: str) -> None:
        """Remove the container, killing it if it runs; one already gone is no error."""

    def run_confined(
        self, *, image: str, command: Sequence[str], confinement: Confinement, timeout: float
    ) -> tuple[int, str]:
        """Run `command` in `image` as the orchestrator would run an agent (its entrypoint
        kept, `confinement` applied) and return its exit code and output. What it wrote is
        not kept: its containers and volumes are removed however it ends. A run the engine
        refuses (a runtime, limit or network it lacks) is a CheckError quoting it."""


@runtime_checkable
class DiffFolders(Protocol):
    """A capability besides `Engine`: the engine keeps each container's writes in a folder
    this process can read (Docker's overlay2 driver on this machine). Reading that folder
    saves a commit and a `docker save` of every layer below. Callers ask for it through
    `diff_folder` only."""

    def upper_dir(self, container: str) -> Path | None:
        """The container's overlay2 upper dir (a deletion is a whiteout there, a folder
        made anew is opaque), or None when it cannot be read here for this container."""


def diff_folder(engine: Engine, container: str) -> Path | None:
    """The folder holding what `container` wrote, as overlay2 keeps it, when `engine` offers
    `DiffFolders` and can give it for this container; else None, and the caller takes the
    container's diff the way every engine can: `commit`, then the top layer of its `save`."""
    if isinstance(engine, DiffFolders):
        return engine.upper_dir(container)
    return None


@dataclass(frozen=True, kw_only=True)
class ImageInfo:
    """An image as `Engine.images` lists it: its ID, its tags and its size in bytes."""

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
