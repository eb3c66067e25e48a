"""Where `sandbox outdated` reads newer versions from: the `Sources` interface, and the live
sources (`apt-cache madison` in a container of the locked base, registries, release indexes)
the CLI uses. Tests pass recording fakes instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from builder.core.errors import ResolutionError
from builder.core.progress import Progress
from builder.engine.interface import Engine
from builder.lock.stager import Stager
from builder.model.lockfile import NodeLock
from builder.model.spec import RuntimeSpec, Spec
from builder.resolve.madison import madison
from builder.store.cache import Cache


@dataclass(frozen=True, kw_only=True)
class Sources:
    """Where newer versions are read from: live ones for the CLI, recording fakes in tests."""

    madison: Callable[[list[str]], str]  # package names -> `apt-cache madison` output
    get_json: Callable[[str], Any]  # URL -> parsed JSON document
    image_pin: Callable[[str], str]  # base image reference -> what lock would pin it to now
    runtime: Callable[[RuntimeSpec], tuple[str, str]]  # -> (allowed, latest) versions


def live_sources(
    *,
    spec: Spec,
    nodes: Mapping[str, NodeLock],
    cache: Cache,
    engine: Callable[[], Engine],
    progress: Progress,
    stage: Stager,
    platform: str,
    host_nodes: Mapping[str, NodeLock] | None = None,
) -> Sources:
    """The sources `sandbox lock` uses, reached from this machine.

    For a `platform` other than the host's, `host_nodes` (the host's pins) give the base
    whose apt lists that platform's packages, as `sandbox lock` resolves them.
    """
    from builder.core.platforms import host_platform
    from builder.net import downloads
    from builder.resolve.apt import ForeignArch
    from builder.resolve.base import resolve_image

    # Without the host's pins, the platform's own base answers (under emulation).
    use_host = platform != host_platform() and host_nodes is not None

    def apt(names: list[str]) -> str:
        progress.say(f"  listing   {len(names)} Debian packages (apt-cache madison) ...")
        image = stage(
            host_nodes if use_host and host_nodes is not None else nodes,
            ["base"],
            platform=host_platform() if use_host else platform,
        )
        foreign = ForeignArch(arch=platform.split("/")[1], installed=()) if use_host else None
        return madison(names, engine=engine(), image=image, log_dir=cache.logs, foreign=foreign)

    def get_json(url: str) -> Any:
        return downloads.get_json(url, what=url, error=ResolutionError)

    def image_pin(ref: str) -> str:
        return str(resolve_image(ref, platform=platform, engine=engine())["pinned"])

    def runtime(runtime: RuntimeSpec) -> tuple[str, str]:
        from builder.resolve.listing import runtime_versions

        return runtime_versions(runtime, platform=platform)

    return Sources(madison=apt, get_json=get_json, image_pin=image_pin, runtime=runtime)
