"""The `tools.npm` node: npm tools, each its own tree and layer, built in a container of node.

Each tool gets its own tree, and its own layer, under /opt/sandbox/tools/npm/<tool>, installed
by `npm ci` from a package-lock holding the tool's closure out of the lock's; executables are
<tool>/node_modules/.bin. Locked by npm itself (`npm install --package-lock-only`,
`resolve/tools.py`): one package-lock of all tools, every platform's optional packages named.

Recipe versions: tools/1; tools/2 (the prefix is a host folder mounted into the step's
container and packed on the host; the folders above it are made by the tool, mode 755).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping
from typing import Any

from builder.core import patterns
from builder.core.errors import BuildError
from builder.core.keys import sha256_of
from builder.engine.step import INPUT_DIR, StepContext, download_cache_mount
from builder.kinds.kind import (
    SAFE_NAME,
    Declared,
    Distro,
    Inputs,
    KindBase,
    LockContext,
    Probe,
    Probes,
    StepResult,
)
from builder.kinds.layer import run_into_prefix
from builder.kinds.purls import purl, sri
from builder.kinds.rules import npm_previous
from builder.kinds.runtime import runtime_node
from builder.model.agents import agent_env, agent_versions
from builder.model.lockfile import NodeKind, NodeLock
from builder.model.spec import Spec
from builder.model.toolinputs import NpmPackage, NpmToolsInputs
from builder.model.typed import write_inputs
from builder.resolve import managers
from builder.resolve.tools import resolve_npm_tools
from builder.store.cache import Layer, NodeEntry
from builder.store.layers import LayerFile

NPM_PREFIX = "/opt/sandbox/tools/npm"
RECIPE = "tools/2"


def build_npm_tools(ctx: StepContext, node: NodeLock) -> StepResult:
    """One layer per npm tool, each its own tree under NPM_PREFIX/<tool>.

    A tool's layer depends only on its closure and the image it is installed in, so a tool
    that did not change keeps its layer (a cache entry under a key of exactly those) when
    another tool moves: only the changed tool installs, and only its layer is new to a
    registry.
    """
    inputs = node.inputs_as(NpmToolsInputs)
    # npm's own package-lock entries, as the lock holds them: a tool's closure of them is
    # hashed into its layer's key
    specs, packages = inputs.tools, [write_inputs(p) for p in inputs.packages]
    if not packages:
        msg = "tools.npm: the lock holds no packages; run `sandbox lock --update tools.npm`"
        raise BuildError(msg)
    stage = ctx.stage(node.name)
    layers: dict[str, LayerFile] = {}
    todo: dict[str, tuple[str, list[Mapping[str, Any]], str]] = {}
    for spec in specs:
        name, _ = managers.npm_dependency(spec)
        folder = npm_folder(name)
        closure = managers.npm_closure(packages, name)
        key = sha256_of({"recipe": RECIPE, "npm": spec, "closure": closure, "in": stage})
        entry = ctx.cache.entry(key)
        if entry is None:
            todo[folder] = (spec, closure, key)
        else:
            (la,) = entry.layers
            layers[folder] = LayerFile(
                diff_id=la.diff_id, path=ctx.cache.layer_path(la.diff_id), size=la.size
            )
    if todo:
        layers.update(_install_npm_tools(ctx, node, todo))
    folders = sorted(layers)
    path = ":".join(f"{NPM_PREFIX}/{f}/node_modules/.bin" for f in folders)
    return StepResult(layers=[layers[f] for f in folders], env={"PATH": path})


def npm_folder(name: str) -> str:
    """The folder of npm tool `name` under NPM_PREFIX: `@openai/codex` -> `@openai+codex`."""
    return name.replace("/", "+")


def _install_npm_tools(
    ctx: StepContext, node: NodeLock, todo: dict[str, tuple[str, list[Mapping[str, Any]], str]]
) -> dict[str, LayerFile]:
    """`npm ci` each tool of `todo` (folder -> spec, closure, key) in its own folder, in one
    container; each folder becomes a layer, kept in the cache under the tool's key."""
    files: dict[str, str] = {}
    lines = []
    for folder, (spec, closure, _) in sorted(todo.items()):
        files[f"{folder}.package.json"] = managers.npm_package_json([spec])
        files[f"{folder}.package-lock.json"] = managers.npm_package_lock([spec], closure)
        where, given = shlex.quote(f"{NPM_PREFIX}/{folder}"), shlex.quote(f"{INPUT_DIR}/{folder}")
        lines += [
            f"mkdir -p {where}",
            f"cp {given}.package.json {where}/package.json",
            f"cp {given}.package-lock.json {where}/package-lock.json",
            f"(cd {where} && npm ci --no-audit --no-fund --loglevel=warn)",
        ]
    mounts = [download_cache_mount(ctx.cache, "npm", "/root/.npm")]
    built: dict[str, LayerFile] = {}
    with run_into_prefix(
        ctx, node, "\n".join(lines) + "\n", what="tools.npm: npm ci", files=files, mounts=mounts
    ) as capture:
        for folder, (_, _, key) in sorted(todo.items()):
            layer = built[folder] = capture(folder)
            piece = Layer(diff_id=layer.diff_id, size=layer.size)
            ctx.cache.put(NodeEntry(name=f"{node.name}/{folder}", key=key, layers=(piece,)))
    return built


class NpmTools(KindBase):
    """`[tools].npm`: npm tools, one tree and one layer each."""

    name = "tools.npm"
    stack = NodeKind.TOOLS
    recipe = RECIPE
    previous = ("tools/1",)
    inputs = NpmToolsInputs

    def declare(self, spec: Spec) -> list[Declared]:
        if not spec.tools.npm:
            return []
        return [Declared(name=self.name, needs=runtime_node(spec, "node"))]

    def lock(self, ctx: LockContext, name: str) -> Inputs:
        node = ctx.runtime_version("node")
        specs = list(ctx.spec.tools.npm)
        names = [patterns.npm_name(s) for s in specs]
        old = ctx.previous.get(name)
        same_node = old is not None and old.inputs.get("node") == node
        unchanged = old is not None and same_node and old.inputs["tools"] == specs
        if old and unchanged and not ctx.wanted(name, names):
            ctx.progress.say(f"  kept      {name}")
            return old.inputs
        previous = npm_previous(old.inputs if old and same_node else None, ctx.update)
        ctx.progress.say(f"  resolving {name} ({', '.join(specs)}) ...")
        # npm's package-lock names every platform's optional packages: the host's npm of the
        # same node version resolves the target's closure as it is.
        ctx.same_as_host("node", node)
        context = ctx.context(name)
        with ctx.watch(name):
            packages = resolve_npm_tools(context, specs, previous)
        ctx.progress.say(f"  resolved  {name} ({len(packages)} packages)")
        return {"node": node, "tools": specs, "packages": packages}

    def build(self, ctx: StepContext, node: NodeLock) -> StepResult:
        return build_npm_tools(ctx, node)

    def pins(self, node: NodeLock, distro: Distro) -> Iterator[tuple[str, dict[str, Any]]]:
        for package in node.inputs_as(NpmToolsInputs).packages:
            yield package.path.replace("node_modules/", ""), _npm_item(package)

    def env(self, node: NodeLock) -> dict[str, str]:
        """Pinned agent CLIs do not update themselves (model/agents.py)."""
        return agent_env(node.inputs_as(NpmToolsInputs))

    def probes(self, node: NodeLock, spec: Spec) -> Probes:
        """Each top-level tool's `bin`, an agent CLI also reporting the version the lock pins;
        node and npm themselves when no runtime is declared."""
        run = []
        if "node" not in {r.name for r in spec.runtimes}:
            run.append(Probe(check=f"node ({self.name})", argv=("node", "--version")))
            run.append(Probe(check=f"npm ({self.name})", argv=("npm", "--version")))
        inputs = node.inputs_as(NpmToolsInputs)
        pinned = agent_versions(inputs)
        refused = []
        for exe in npm_bins(inputs):
            if SAFE_NAME.fullmatch(exe):
                check = f"{self.name} {exe}"
                run.append(Probe(check=check, argv=(exe,), tool=True, version=pinned.get(exe)))
            else:
                refused.append(f"{self.name} {exe!r}")
        return Probes(run=run, refused=refused)


def npm_bins(inputs: NpmToolsInputs) -> list[str]:
    """The executables of the top-level npm tools, from their package-lock entries' `bin`."""
    names = {patterns.npm_name(spec) for spec in inputs.tools}
    found: set[str] = set()
    for package in inputs.packages:
        name = package.path.removeprefix("node_modules/")
        if name not in names:
            continue
        declared = package.bin or {}
        if isinstance(declared, str):  # `"bin": "cli.js"` names the package's own command
            found.add(name.rpartition("/")[2])
        else:
            found.update(declared)
    return sorted(found)


def _npm_item(package: NpmPackage) -> dict[str, Any]:
    pin = package.fields
    name = str(pin.get("name") or package.path.rsplit("node_modules/", 1)[-1])
    scope, _, bare = name.rpartition("/")
    version = package.version or ""
    resolved = str(pin.get("resolved", ""))
    return {
        "name": name,
        "version": version,
        "purl": purl("npm", bare, version, namespace=scope),
        "kind": "library",
        "checksums": tuple(sri(str(pin.get("integrity", "")))),
        "url": resolved if "://" in resolved else "",
        "note": f"npm tools: {package.path}",
    }
