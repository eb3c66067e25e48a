"""`sandbox lock`: resolve a spec into a Lock, node by node, keeping what need not change.

Without `update`, a node whose request is unchanged since the old lock keeps its pins, so
locking twice gives the same bytes and a new package does not move the others. `update=[]`
re-resolves everything; `update=["jq"]` re-resolves the node holding jq, keeping every other
pin of that node fixed. Resolving the system layer needs a container of the locked base, so
the base is built (or taken from the cache) on the way.
"""

from __future__ import annotations

import platform as host
from collections.abc import Callable
from typing import Any

from builder.cache import Cache
from builder.engine import Engine
from builder.errors import ResolutionError
from builder.execute import Executor
from builder.graph import build_graph
from builder.keys import node_key
from builder.lockfile import Lock, NodeLock
from builder.plan import make_plan
from builder.progress import Progress
from builder.resolve.apt import resolve_system, system_request
from builder.resolve.base import resolve_base
from builder.spec import Spec

LOCKABLE = ("base", "system")


def host_platform() -> str:
    machine = host.machine().lower()
    return "linux/arm64" if machine in ("aarch64", "arm64") else "linux/amd64"


def lock_project(
    *,
    spec: Spec,
    old: Lock | None,
    update: list[str] | None,
    cache: Cache,
    engine: Callable[[], Engine],
    progress: Progress,
) -> Lock:
    graph = build_graph(spec)
    unsupported = [n for n in graph.names() if graph.node(n).kind.value not in LOCKABLE]
    if unsupported:
        msg = (
            f"{spec.path}: node {unsupported[0]} needs a layer kind this version cannot lock "
            "yet (only [base] and [system] are supported). Remove that table for now"
        )
        raise ResolutionError(msg)
    platforms: dict[str, dict[str, NodeLock]] = {}
    epoch = 0
    for platform in spec.image.platforms:
        if platform != host_platform():
            msg = (
                f"{spec.path}: [image].platforms: locking {platform} needs a {platform} "
                f"machine; this one is {host_platform()}. Lock on such a machine"
            )
            raise ResolutionError(msg)
        previous = dict(old.platforms.get(platform, {})) if old else {}
        nodes = _lock_platform(
            spec=spec,
            previous=previous,
            update=update,
            cache=cache,
            engine=engine,
            progress=progress,
            platform=platform,
        )
        platforms[platform] = nodes
        epoch = max(epoch, int(nodes["base"].inputs.get("epoch", 0)))
    return Lock(spec_hash=spec.spec_hash(), source_date_epoch=epoch, platforms=platforms)


def _lock_platform(
    *,
    spec: Spec,
    previous: dict[str, NodeLock],
    update: list[str] | None,
    cache: Cache,
    engine: Callable[[], Engine],
    progress: Progress,
    platform: str,
) -> dict[str, NodeLock]:
    def wanted(name: str, contents: list[str]) -> bool:
        """Whether `update` asks to re-resolve node `name` (holding `contents`)."""
        if update is None:
            return False
        return not update or name in update or any(c in update for c in contents)

    old_base = previous.get("base")
    base_request = _base_request(spec)
    if old_base and _same(old_base.inputs, base_request) and not wanted("base", []):
        base = old_base
        progress.say(f"  kept      base ({_describe_base(base.inputs)})")
    else:
        progress.say("  resolving base ...")
        inputs = resolve_base(
            spec.base, platform=platform, engine=None if spec.base.bootstrap else engine()
        )
        base = _node("base", "base", inputs, [], {}, platform)
        progress.say(f"  resolved  base ({_describe_base(base.inputs)})")

    request = system_request(spec)
    system_request_inputs = {
        "request": request,
        "user": spec.image.user,
        "uid": spec.image.uid,
        "workdir": spec.image.workdir,
    }
    old_system = previous.get("system")
    old_names = [p["name"] for p in old_system.inputs["packages"]] if old_system else []
    same_request = (
        old_system is not None
        and old_base is not None
        and base.key == old_base.key
        and _same(old_system.inputs, system_request_inputs)
    )
    if old_system and same_request and not wanted("system", old_names):
        system = old_system
        progress.say(f"  kept      system ({len(old_names)} packages)")
    else:
        keep: dict[str, str] = {}
        if old_system and same_request and update:
            keep = {
                p["name"]: p["version"]
                for p in old_system.inputs["packages"]
                if p["name"] not in update and p["name"] not in request
            }
        packages: list[dict[str, Any]] = []
        if request:
            progress.say(f"  resolving system ({len(request)} requested) ...")
            executor = Executor(
                nodes={"base": base},
                cache=cache,
                engine=engine,
                platform=platform,
                epoch=int(base.inputs.get("epoch", 0)),
                progress=progress,
            )
            executor.run(make_plan({"base": base}, cache.entry), jobs=1)
            packages = resolve_system(
                request,
                keep=keep,
                engine=engine(),
                image=executor.stage(["base"]),
                log_dir=cache.root / "logs",
            )
        system = _node(
            "system",
            "system",
            {**system_request_inputs, "packages": packages},
            ["base"],
            {"base": base.key},
            platform,
        )
        progress.say(f"  resolved  system ({len(packages)} packages in the closure)")
    return {"base": base, "system": system}


def _base_request(spec: Spec) -> dict[str, Any]:
    if spec.base.bootstrap:
        boot = spec.base.bootstrap
        return {"bootstrap": {"suite": boot.suite, "mirror": boot.mirror, "variant": boot.variant}}
    return {"image": spec.base.image}


def _same(inputs: Any, request: dict[str, Any]) -> bool:
    """Whether the old inputs were resolved from this same request."""
    return all(inputs.get(k) == v for k, v in request.items())


def _describe_base(inputs: Any) -> str:
    if "bootstrap" in inputs:
        boot = inputs["bootstrap"]
        return f"debootstrap {boot['suite']}, {len(inputs['packages'])} packages"
    return f"{inputs['image']} -> {inputs['pinned']}"


def _node(
    name: str,
    kind: str,
    inputs: dict[str, Any],
    parents: list[str],
    parent_keys: dict[str, str],
    platform: str,
) -> NodeLock:
    return NodeLock(
        name=name,
        kind=kind,
        key=node_key(kind=kind, inputs=inputs, parents=parent_keys, platform=platform),
        parents=tuple(parents),
        inputs=inputs,
    )
