"""The `tools.npm` node: npm tools, each its own tree and layer under
/opt/sandbox/tools/npm/<tool>; executables are <tool>/node_modules/.bin.

Locked by npm itself (`npm install --package-lock-only`, `resolve/tools.py`): one
package-lock of all tools, every platform's optional packages named. Built one layer per tool
(`layers.py`, which says what each tool's cache key hashes): assembled on the host from the
locked tarballs where npm would run no code (`tree.py`, `fetch.py`, `lockjson.py`), else by
`npm ci` in a container of node (`recipe.py`). A node all of whose tools are assembled on the
host needs no container and no parent layer (`needs_stage`), so it builds without waiting.

Recipe versions: the tool kinds' (`layer.TOOLS_RECIPE`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from builder.core import patterns
from builder.engine.step import StepContext
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
from builder.kinds.layer import TOOLS_PREVIOUS, TOOLS_RECIPE
from builder.kinds.npm.layers import build_npm_tools, in_container, tool_closures
from builder.kinds.purls import purl, sri
from builder.kinds.rules import npm_previous
from builder.kinds.runtime import runtime_node
from builder.model.agents import agent_env, agent_versions
from builder.model.lockfile import NodeKind, NodeLock
from builder.model.spec import Spec
from builder.model.toolinputs import NpmPackage, NpmToolsInputs
from builder.resolve.tools import resolve_npm_tools


class NpmTools(KindBase):
    """`[tools].npm`: npm tools, one tree and one layer each."""

    name = "tools.npm"
    stack = NodeKind.TOOLS
    recipe = TOOLS_RECIPE
    previous = TOOLS_PREVIOUS
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

    def needs_stage(self, node: NodeLock) -> bool:
        """Only when a tool of the lock needs npm run in a container (install scripts, ...);
        a binding.gyp only a tarball shows is found while building, and waits then."""
        return bool(in_container(node))

    def placement(self, node: NodeLock) -> list[str]:
        """Each tool: assembled on the host, or in a container and why (the lock alone
        decides, but for a binding.gyp found in a tarball while building)."""
        refused = in_container(node)
        return [
            f"{spec}: in a container: {refused[spec]}"
            if spec in refused
            else f"{spec}: assembled on the host"
            for spec, _ in sorted(tool_closures(node).values())
        ]

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
