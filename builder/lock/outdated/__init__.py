"""`sandbox outdated`: for every pin of sandbox.lock, what the spec allows now and what exists.

Each pin is compared against the same sources `sandbox lock` resolves from:
- Debian packages (the system closure and a bootstrap base's package set): `apt-cache madison`
  in a container of the locked base, after `apt-get update` with the base's own sources (the
  suite, -updates and -security). A newer version the spec allows that `<suite>-security`
  carries makes the pin a security update.
- a base image reference: the digest its tag points to now (registry), or the local image ID.
- runtimes: the publisher's release index (the request picks `allowed`; the newest stable
  release overall is `latest`).
- pip tools and their closures: PyPI's JSON API; npm tools and their closures: the npm
  registry's metadata (`allowed` for the tools themselves: their spec's range).
- binaries: their version is fixed in sandbox.toml and has no index to ask; listed with --all.

Everything that reaches the network is behind `Sources`, so the comparison itself is tested
with recording fakes.

This module gathers the pins and holds the entry points; `debian` and `indexes` compare each
kind of pin, `sources` reaches the network, `report` is the result and how it is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from enum import StrEnum

from builder.core.progress import Progress
from builder.engine.interface import Engine
from builder.kinds import KINDS
from builder.lock.outdated.debian import base_image_pins, debian_pins
from builder.lock.outdated.indexes import (
    NPM,
    PYPI,
    bin_pin,
    npm_allowed,
    npm_pins,
    npm_url,
    pip_pins,
    pypi_releases,
    runtime_pins,
)
from builder.lock.outdated.report import Pin, Report, security_updates
from builder.lock.outdated.sources import Sources, live_sources
from builder.lock.stager import Stager
from builder.model.inputs import RuntimeInputs
from builder.model.lockfile import Lock, NodeLock
from builder.model.spec import Spec
from builder.model.toolinputs import BinToolInputs, NpmToolsInputs, PipToolsInputs
from builder.store.cache import Cache

__all__ = [
    "NPM",
    "PIN_KINDS",
    "PYPI",
    "Pin",
    "PinKind",
    "Report",
    "Sources",
    "gather",
    "live_sources",
    "npm_allowed",
    "npm_url",
    "outdated_project",
    "pending_security",
    "pypi_releases",
    "security_updates",
]


class PinKind(StrEnum):
    """What sort of pin a `Pin` is: where its newer versions are looked up."""

    BASE = "base"  # an image base's reference (its registry)
    DEB = "deb"  # a Debian package (apt-cache madison)
    RUNTIME = "runtime"  # a runtime's release (its publisher's index)
    PYPI = "pypi"
    NPM = "npm"
    BIN = "bin"  # a downloaded binary (fixed in sandbox.toml: no index)


PIN_KINDS = frozenset(PinKind)


def gather(
    *,
    spec: Spec,
    nodes: Mapping[str, NodeLock],
    sources: Sources,
    kinds: Collection[str] = PIN_KINDS,
) -> list[Pin]:
    """Every pin of `nodes` of the given kinds, sorted by node order then package."""
    typed = {name: KINDS.typed(node) for name, node in nodes.items()}
    pins: list[Pin] = []
    if PinKind.BASE in kinds:
        pins.extend(base_image_pins(typed, sources))
    if PinKind.DEB in kinds:
        pins.extend(debian_pins(spec, typed, sources))
    for name, inputs in typed.items():
        if PinKind.RUNTIME in kinds and isinstance(inputs, RuntimeInputs):
            pins.extend(runtime_pins(spec, name, inputs, sources))
        elif PinKind.PYPI in kinds and isinstance(inputs, PipToolsInputs):
            pins.extend(pip_pins(name, inputs, sources))
        elif PinKind.NPM in kinds and isinstance(inputs, NpmToolsInputs):
            pins.extend(npm_pins(name, inputs, sources))
        elif PinKind.BIN in kinds and isinstance(inputs, BinToolInputs):
            pins.append(bin_pin(name, inputs))
    order = {name: i for i, name in enumerate(nodes)}
    return sorted(pins, key=lambda p: (order.get(p.node, len(order)), p.package, p.locked))


def outdated_project(
    *,
    spec: Spec,
    lock: Lock,
    cache: Cache,
    engine: Callable[[], Engine],
    progress: Progress,
    stage: Stager,
    kinds: Collection[str] = PIN_KINDS,
    platform: str | None = None,
) -> Report:
    """Every pin of `platform` (else this machine's) in `lock`, next to what its sources offer
    now. Another platform's Debian packages are listed by the host's base, told that arch."""
    from builder.core.platforms import host_platform

    platform = platform or host_platform()
    nodes = lock.nodes(platform)
    sources = live_sources(
        spec=spec,
        nodes=nodes,
        cache=cache,
        engine=engine,
        progress=progress,
        stage=stage,
        platform=platform,
        host_nodes=lock.platforms.get(host_platform()),
    )
    return Report(pins=gather(spec=spec, nodes=nodes, sources=sources, kinds=kinds))


def pending_security(
    *,
    spec: Spec,
    lock: Lock,
    cache: Cache,
    engine: Callable[[], Engine],
    progress: Progress,
    stage: Stager,
) -> list[str]:
    """The Debian packages of `lock` with a security update pending (for `lock --security`)."""
    report = outdated_project(
        spec=spec,
        lock=lock,
        cache=cache,
        engine=engine,
        progress=progress,
        stage=stage,
        kinds={PinKind.DEB},
    )
    return security_updates(report.pins)
