"""`sandbox lock`: resolve a spec into a Lock, node by node, keeping what need not change.

Nodes are locked parents first. Each node's inputs record what the spec asked for
(`requested`); when that is unchanged since the old lock, the old pins are kept, so locking
twice gives the same bytes and a new package does not move the others. `update=[]`
re-resolves everything; `update=["jq"]` re-resolves what holds jq (a package, tool or runtime
name, or a node name), keeping every other pin. Resolvers that need the image's own tools
(apt, pip, npm) run in a container of the node's ancestors, built (or taken from the cache)
on the way.

Every platform of `[image].platforms` is locked on this machine, without emulation: the host's
platform first, then each other one with the host's containers of the same nodes as its
resolvers, told the target (apt: its architecture and its base's packages; pip: its wheel
tags; npm's package-lock already names every platform's optional packages). The host's pins
are locked even when the spec does not list its platform, for those containers, and not
written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from builder.core import patterns
from builder.core.errors import ResolutionError
from builder.core.keys import node_key
from builder.core.platforms import host_platform
from builder.core.progress import Progress
from builder.engine.emulation import require_emulation
from builder.engine.interface import Engine, in_step
from builder.engine.step import StepContext
from builder.lock import bins, runtimes
from builder.lock.resolve.apt import (
    ForeignArch,
    resolve_logs,
    resolve_system,
)
from builder.lock.resolve.base import resolve_base
from builder.lock.resolve.deps import lock_dep
from builder.lock.resolve.image import BaseFacts, describe_image
from builder.lock.resolve.tools import resolve_npm_tools, resolve_pip_closures, resolve_pip_tools
from builder.lock.rules import (
    answers,
    base_request,
    base_upgrades,
    check_apt_runtimes,
    describe_base,
    foreign_arch,
    npm_previous,
    pip_kept_and_todo,
    runtime_version,
    system_request_inputs,
    upstream_version,
)
from builder.lock.stager import Stager
from builder.model.graph import LayerGraph, build_graph
from builder.model.lockfile import Lock, NodeLock
from builder.model.spec import Spec
from builder.store.cache import Cache


def lock_project(
    *,
    spec: Spec,
    old: Lock | None,
    update: list[str] | None,
    cache: Cache,
    engine: Callable[[], Engine],
    progress: Progress,
    stage: Stager,
) -> Lock:
    graph = build_graph(spec)
    platforms: dict[str, dict[str, NodeLock]] = {}
    epoch = 0
    host: _Locker | None = None
    for platform in [host_platform(), *sorted(set(spec.image.platforms) - {host_platform()})]:
        listed = platform in spec.image.platforms
        if host is not None:
            progress.say(f"  locking   {platform}, with {host.platform}'s resolvers")
        locker = _Locker(
            spec=spec,
            graph=graph,
            previous=dict(old.platforms.get(platform, {})) if old else {},
            update=update,
            cache=cache,
            engine=engine,
            progress=progress,
            stage=stage,
            platform=platform,
            host=host,
        )
        nodes = locker.lock_all()
        if host is None:
            host = locker
        if listed:
            platforms[platform] = nodes
            epoch = max(epoch, int(nodes["base"].inputs.get("epoch", 0)))
    return Lock(spec_hash=spec.spec_hash(), source_date_epoch=epoch, platforms=platforms)


@dataclass(kw_only=True)
class _Locker:
    """Locks the nodes of one platform, in graph order."""

    spec: Spec
    graph: LayerGraph
    previous: dict[str, NodeLock]
    update: list[str] | None
    cache: Cache
    engine: Callable[[], Engine]
    progress: Progress
    stage: Stager
    platform: str
    host: _Locker | None = None  # set when `platform` is not this machine's: its resolvers

    def __post_init__(self) -> None:
        self.nodes: dict[str, NodeLock] = {}

    def lock_all(self) -> dict[str, NodeLock]:
        for name in self.graph.names():
            kind = self.graph.node(name).kind
            parents = self.graph.parents(name)
            with in_step(f"lock {name}"):
                if kind in ("base", "system"):
                    inputs = self._lock_base() if kind == "base" else self._lock_system()
                else:
                    inputs = self._lock_layer(name)
            self.nodes[name] = NodeLock(
                name=name,
                kind=kind,
                key=node_key(
                    kind=kind,
                    inputs=inputs,
                    parents={p: self.nodes[p].key for p in parents},
                    platform=self.platform,
                ),
                parents=tuple(parents),
                inputs=inputs,
            )
        return self.nodes

    # -- what to keep ------------------------------------------------------------------------

    def wanted(self, name: str, contents: list[str]) -> bool:
        """Whether `update` asks to re-resolve node `name` (holding `contents`)."""
        if self.update is None:
            return False
        return not self.update or name in self.update or any(c in self.update for c in contents)

    def kept(
        self, name: str, requested: Mapping[str, Any], contents: list[str]
    ) -> Mapping[str, Any] | None:
        """The old inputs of `name` if they answer the same request and no update asks."""
        old = self.previous.get(name)
        if old and old.inputs.get("requested") == requested and not self.wanted(name, contents):
            self.progress.say(f"  kept      {name}")
            return old.inputs
        return None

    # -- base and system ---------------------------------------------------------------------

    def _lock_base(self) -> Mapping[str, Any]:
        old_base = self.previous.get("base")
        request = base_request(self.spec)
        if old_base and answers(old_base.inputs, request) and not self.wanted("base", []):
            if "bootstrap" in old_base.inputs or "config" in old_base.inputs:
                self.progress.say(f"  kept      base ({describe_base(old_base.inputs)})")
                return old_base.inputs
            # Locked before lock recorded what an image base has: keep its pin, read the rest.
            pinned = {k: old_base.inputs[k] for k in ("image", "pinned", "epoch")}
            return self._describe(pinned)
        self.progress.say("  resolving base ...")
        inputs = resolve_base(
            self.spec.base,
            platform=self.platform,
            engine=None if self.spec.base.bootstrap else self.engine(),
            foreign=self.host is not None,
        )
        return self._describe(inputs) if self.spec.base.image else self._resolved(inputs)

    def _describe(self, pinned: Mapping[str, Any]) -> Mapping[str, Any]:
        """An image base's inputs: its pin and what the image has (resolve/image.py).

        Another platform's image is probed under emulation: one short script, the only
        step of a lock that runs that platform's programs.
        """
        if self.host is not None:
            what = f"reading {self.platform}'s base image {pinned['image']}"
            require_emulation(self.platform, what=what, error=ResolutionError)
        described = describe_image(
            image=str(pinned["image"]),
            pinned=str(pinned["pinned"]),
            platform=self.platform,
            engine=self.engine(),
            log=self.cache.log_path("base"),
        )
        return self._resolved({**pinned, **described})

    def _resolved(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        self.progress.say(f"  resolved  base ({describe_base(inputs)})")
        return inputs

    def _lock_system(self) -> Mapping[str, Any]:
        spec = self.spec
        base = self.nodes["base"].inputs
        request_inputs = system_request_inputs(spec, base)
        request: list[str] = request_inputs["request"]
        # Not part of the request compared below: they change the layer, not the apt closure,
        # so a lock made before they existed keeps its pins.
        setuid: dict[str, Any] = {"allow_setuid": sorted(spec.image.allow_setuid)}
        setuid |= {"docs": True} if spec.system_docs else {}
        old_base, old = self.previous.get("base"), self.previous.get("system")
        old_names = [p["name"] for p in old.inputs["packages"]] if old else []
        # `--update NAME` of a package the base installed (a security fix, say): the system
        # layer upgrades it, so the base's pins stay as debootstrap resolved them.
        upgrades = base_upgrades(self.nodes["base"], self.update, request)
        same_request = (
            old is not None
            and old_base is not None
            and self.nodes["base"].key == old_base.key
            and answers(old.inputs, request_inputs)
        )
        if old and same_request and not self.wanted("system", old_names + upgrades):
            self.progress.say(f"  kept      system ({len(old_names)} packages)")
            kept = {k: v for k, v in old.inputs.items() if k != "docs"}
            return {**kept, **setuid}
        keep: dict[str, str] = {}
        if old and same_request and self.update:
            keep = {
                p["name"]: p["version"]
                for p in old.inputs["packages"]
                if p["name"] not in self.update
            }
        packages: list[dict[str, Any]] = []
        if request or upgrades:
            self.progress.say(f"  resolving system ({len(request)} requested) ...")
            image = (self.host or self)._stage(["base"])
            logs, foreign = self.cache.logs, self._foreign_arch()
            with self.progress.watch("system", resolve_logs(logs, foreign)):
                packages = resolve_system(
                    request + upgrades,
                    keep=keep,
                    engine=self.engine(),
                    image=image,
                    log_dir=logs,
                    foreign=foreign,
                )
        check_apt_runtimes(spec, packages, base=BaseFacts.of(base).packages)
        self.progress.say(f"  resolved  system ({len(packages)} packages in the closure)")
        return {**request_inputs, **setuid, "packages": packages}

    # -- runtimes, tools, deps ---------------------------------------------------------------

    def _lock_layer(self, name: str) -> Mapping[str, Any]:
        if name.startswith("runtime."):
            return self._lock_runtime(name)
        if name == "tools.pip":
            return self._lock_pip()
        if name == "tools.npm":
            return self._lock_npm()
        if name.startswith("tools.bin."):
            return self._lock_bin(name)
        return self._lock_deps(name)

    def _lock_runtime(self, name: str) -> Mapping[str, Any]:
        runtime = next(r for r in self.spec.runtimes if f"runtime.{r.name}" == name)
        requested = {
            "provider": runtime.provider,
            "version": runtime.version,
            "mirror": runtime.mirror or "",
        }
        old = self.kept(name, requested, [runtime.name])
        if old is not None:
            return old
        self.progress.say(f"  resolving {name} ({runtime.version}, {runtime.provider}) ...")
        resolved = runtimes.resolve_runtime(
            runtime.name,
            runtime.version,
            runtime.provider,
            mirror=runtime.mirror,
            platform=self.platform,
            downloads=self.cache.downloads,
        )
        self.progress.say(f"  resolved  {name} {resolved['version']}")
        return {**resolved, "requested": requested}

    def _lock_bin(self, name: str) -> Mapping[str, Any]:
        tool = next(t for t in self.spec.tools.bin if f"tools.bin.{t.name}" == name)
        requested = {
            "version": tool.version,
            "url": tool.url or "",
            "path": tool.path or "",
            "bin": tool.binary or tool.name,
            "auth_env": tool.auth_env or "",
            "file_sha256": tool.file_sha256 or "",
        }
        old = self.kept(name, requested, [tool.name])
        if old is not None:
            return old
        resolved = bins.resolve_bin(
            tool,
            project_dir=self.spec.project_dir,
            platform=self.platform,
            downloads=self.cache.downloads,
        )
        self.progress.say(f"  resolved  {name} {tool.version}")
        return {**resolved, "requested": requested}

    def _lock_pip(self) -> Mapping[str, Any]:
        python = self._runtime_version("python")
        old = self.previous.get("tools.pip")
        old_tools = old.inputs["tools"] if old and old.inputs.get("python") == python else {}
        tools, todo = pip_kept_and_todo(
            self.spec.tools.pip, old_tools, lambda tool: self.wanted("tools.pip", [tool])
        )
        if todo:
            self.progress.say(f"  resolving tools.pip ({', '.join(sorted(todo))}) ...")
            if self.host is not None:
                self._same_as_host("python", python)
            context = (self.host or self)._context("tools.pip")
            with self._watch("tools.pip"):
                target = self.platform if self.host else None
                tools.update(resolve_pip_tools(context, todo, target=target))
        closure = sum(len(t["packages"]) for t in tools.values())
        summary = f"{len(tools)} tools, {closure} packages"
        if not todo:
            self.progress.say(f"  kept      tools.pip ({summary})")
        elif len(todo) < len(tools):
            kept = ", ".join(sorted(set(tools) - set(todo)))
            self.progress.say(f"  resolved  tools.pip ({summary}; kept {kept})")
        else:
            self.progress.say(f"  resolved  tools.pip ({summary})")
        return {"python": python, "tools": dict(sorted(tools.items()))}

    def _lock_npm(self) -> Mapping[str, Any]:
        node = self._runtime_version("node")
        specs = list(self.spec.tools.npm)
        names = [patterns.npm_name(s) for s in specs]
        old = self.previous.get("tools.npm")
        same_node = old is not None and old.inputs.get("node") == node
        unchanged = old is not None and same_node and old.inputs["tools"] == specs
        if old and unchanged and not self.wanted("tools.npm", names):
            self.progress.say("  kept      tools.npm")
            return old.inputs
        previous = npm_previous(old.inputs if old and same_node else None, self.update)
        self.progress.say(f"  resolving tools.npm ({', '.join(specs)}) ...")
        # npm's package-lock names every platform's optional packages: the host's npm of the
        # same node version resolves the target's closure as it is.
        if self.host is not None:
            self._same_as_host("node", node)
        context = (self.host or self)._context("tools.npm")
        with self._watch("tools.npm"):
            packages = resolve_npm_tools(context, specs, previous)
        self.progress.say(f"  resolved  tools.npm ({len(packages)} packages)")
        return {"node": node, "tools": specs, "packages": packages}

    def _lock_deps(self, name: str) -> Mapping[str, Any]:
        dep = next(d for d in self.spec.deps if f"deps.{d.name}" == name)
        runtime = "node" if dep.manager in ("npm", "pnpm") else "python"
        old = self.previous.get(name)

        def resolve_pip(requirements: str, constraints: str | None) -> list[dict[str, str]]:
            self.progress.say(f"  resolving {name} (pip: requirements.txt) ...")
            if self.host is not None:
                self._same_as_host("python", self._runtime_version("python"))
            context = (self.host or self)._context(name)
            with self._watch(name):
                closures = resolve_pip_closures(
                    context,
                    name,
                    {dep.name: requirements},
                    what=f"resolving {name}",
                    constraints=constraints,
                    target=self.platform if self.host else None,
                )
            return closures[dep.name]

        inputs = lock_dep(
            dep,
            runtime_version=self._runtime_version(runtime),
            old=old.inputs if old else None,
            update=self.wanted(name, [dep.name, dep.manager]),
            update_names=self.update,
            platform=self.platform,
            downloads=self.cache.downloads,
            project_dir=self.spec.project_dir,
            resolve_pip=resolve_pip,
        )
        pinned = f", {len(inputs['pins'])} packages pinned" if "pins" in inputs else ""
        done = "kept    " if old is not None and dict(old.inputs) == inputs else "resolved"
        self.progress.say(f"  {done}  {name} ({dep.manager}, {dep.mode}{pinned})")
        return inputs

    # -- helpers -----------------------------------------------------------------------------

    def _watch(self, name: str) -> AbstractContextManager[None]:
        """The heartbeat of the step resolving `name` in a container (its log's name)."""
        return self.progress.watch(name, [(self.host or self).cache.log_path(name)])

    def _foreign_arch(self) -> ForeignArch | None:
        """What apt resolves for when this platform is not the host's."""
        if self.host is None:
            return None
        return foreign_arch(self.spec, self.platform, self.nodes["base"].inputs)

    def _same_as_host(self, runtime: str, version: str) -> None:
        """The host's `runtime` resolves for the target only when it is the same version."""
        assert self.host is not None
        here = self.host._runtime_version(runtime)
        if upstream_version(here) != upstream_version(version):
            msg = (
                f"{self.spec.path}: {self.platform} gets {runtime} {version} but this machine's "
                f"platform gets {here}, so its tools cannot be resolved here for "
                f"{self.platform}. Pin [runtimes].{runtime} to one exact version"
            )
            raise ResolutionError(msg)

    def _runtime_version(self, runtime: str) -> str:
        return runtime_version(self.spec, self.nodes, runtime)

    def _stage(self, names: list[str]) -> str:
        """The image of locked nodes `names` stacked, building what the cache lacks."""
        return self.stage(self.nodes, names, platform=self.platform)

    def _context(self, name: str) -> StepContext:
        """A step context whose stage for `name` is its (already locked) parents' stack."""
        image = self._stage(self.graph.parents(name))
        return StepContext(
            cache=self.cache,
            engine=self.engine,
            platform=self.platform,
            epoch=int(self.nodes["base"].inputs.get("epoch", 0)),
            stage=lambda _: image,
            project_dir=self.spec.project_dir,
        )
