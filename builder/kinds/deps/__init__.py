"""`deps.<name>` nodes: a project's dependency tree from its own lockfile (pnpm, npm, pip, uv).

`recipe` installs the tree under /opt/sandbox/deps/<name> (`host` assembles npm and pnpm
`install` trees on the host instead, where no code needs to run); `resolve/deps.py` pins its files
and what the manager needs. Recipe versions: deps/1; deps/2 (the prefix is a host folder
mounted into the step's container and packed on the host, as tools/2).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from builder.engine.step import StepContext
from builder.kinds.deps.host import refusal
from builder.kinds.deps.recipe import RECIPE, build_deps
from builder.kinds.kind import (
    Declared,
    Distro,
    Inputs,
    KindBase,
    LockContext,
    Probe,
    Probes,
    StepResult,
)
from builder.kinds.purls import package, purl
from builder.kinds.runtime import runtime_node
from builder.model.lockfile import NodeKind, NodeLock
from builder.model.spec import DepManager, DepMode, DepSpec, Spec
from builder.model.toolinputs import DepsInputs
from builder.resolve.deps import lock_dep
from builder.resolve.tools import resolve_pip_closures

_NODE_MANAGERS = (DepManager.PNPM, DepManager.NPM)
_INSTALLER_PURL = {DepManager.PNPM: "npm", DepManager.UV: "pypi"}

# Run by the image's python3 with distribution names: import each one's top-level modules
# (top_level.txt, else the packages and modules its RECORD installs), the one named like it
# when there is one.
IMPORT = r"""
import importlib, importlib.metadata as md, re, sys
for name in sys.argv[1:]:
    dist = md.distribution(name)
    tops = (dist.read_text("top_level.txt") or "").split()
    if not tops:
        for f in dist.files or []:
            part = f.parts[0]
            if len(f.parts) == 1 and part.endswith((".py", ".so")):
                tops.append(part.split(".")[0])
            elif len(f.parts) > 1 and f.parts[1] == "__init__.py":
                tops.append(part)
    own = [t for t in tops if re.sub(r"[-_.]+", "-", t).lower() == name]
    for top in own or sorted({t for t in tops if not t.startswith("_")}):
        importlib.import_module(top)
        print("imported", top, "from", dist.metadata["Name"], dist.version)
"""


class Deps(KindBase):
    """`[deps.<name>]`: one project's tree, on the runtime its manager runs on."""

    name = "deps"
    stack = NodeKind.DEPS
    recipe = RECIPE
    previous = ("deps/1",)
    inputs = DepsInputs
    many = True

    def declare(self, spec: Spec) -> list[Declared]:
        return [
            Declared(name=deps_node(dep), needs=runtime_node(spec, _runtime(dep)))
            for dep in spec.deps
        ]

    def lock(self, ctx: LockContext, name: str) -> Inputs:
        dep = next(d for d in ctx.spec.deps if deps_node(d) == name)
        old = ctx.previous.get(name)

        def resolve_pip(requirements: str, constraints: str | None) -> list[dict[str, str]]:
            ctx.progress.say(f"  resolving {name} (pip: requirements.txt) ...")
            ctx.same_as_host("python", ctx.runtime_version("python"))
            context = ctx.context(name)
            with ctx.watch(name):
                closures = resolve_pip_closures(
                    context,
                    name,
                    {dep.name: requirements},
                    what=f"resolving {name}",
                    constraints=constraints,
                    target=ctx.platform if ctx.foreign else None,
                )
            return closures[dep.name]

        inputs = lock_dep(
            dep,
            runtime_version=ctx.runtime_version(_runtime(dep)),
            old=old.inputs if old else None,
            update=ctx.wanted(name, [dep.name, dep.manager]),
            update_names=ctx.update,
            platform=ctx.platform,
            downloads=ctx.cache.downloads,
            project_dir=ctx.spec.project_dir,
            resolve_pip=resolve_pip,
        )
        pinned = f", {len(inputs['pins'])} packages pinned" if "pins" in inputs else ""
        done = "kept    " if old is not None and dict(old.inputs) == inputs else "resolved"
        ctx.progress.say(f"  {done}  {name} ({dep.manager}, {dep.mode}{pinned})")
        return inputs

    def build(self, ctx: StepContext, node: NodeLock) -> StepResult:
        return build_deps(ctx, node)

    def needs_stage(self, node: NodeLock) -> bool:
        """Only when the lock says the tree is installed in a container (`host.refusal`);
        what only the project's lockfile or a tarball shows (install scripts, a layout the
        host does not make) is found while building, and waits for the parents then."""
        return refusal(node.inputs_as(DepsInputs)) is not None

    def placement(self, node: NodeLock) -> list[str]:
        """The tree: assembled on the host, or in a container and why (as `needs_stage`)."""
        reason = refusal(node.inputs_as(DepsInputs))
        if reason is None:
            return ["tree: assembled on the host"]
        return [f"tree: in a container: {reason}"]

    def pins(self, node: NodeLock, distro: Distro) -> Iterator[tuple[str, dict[str, Any]]]:
        inputs = node.inputs_as(DepsInputs)
        for file, sha in sorted(inputs.files.items()):
            yield (
                f"file-{file}",
                package(
                    name=f"{inputs.path}/{file}",
                    version="",
                    purl=purl("generic", file, checksum=f"sha256:{sha}"),
                    kind="file",
                    checksums=(("SHA256", sha),),
                    note=f"{inputs.manager.value} project file; the packages it pins are "
                    "not listed",
                ),
            )
        pin, manager = inputs.installer, inputs.manager
        if pin is not None and manager in _INSTALLER_PURL:
            yield (
                manager.value,
                package(
                    name=manager.value,
                    version=pin.version,
                    purl=purl(_INSTALLER_PURL[manager], manager.value, pin.version),
                    kind="application",
                    checksums=(("SHA256", pin.sha256),),
                    url=pin.url,
                    note=f"package manager of {inputs.path}",
                ),
            )

    def probes(self, node: NodeLock, spec: Spec) -> Probes:
        """The libraries a tree installed into the image's python3 import (each requested
        distribution's top-level modules); a tree kept in the store is only mounted."""
        deps = node.inputs_as(DepsInputs)
        if deps.mode is DepMode.STORE:
            return Probes()
        run = [
            Probe(check=f"{node.name} import {library}", argv=("python3", "-c", IMPORT, library))
            for library in deps.requires or ()
        ]
        return Probes(run=run)


def deps_node(dep: DepSpec) -> str:
    """The name of the node that installs `dep`'s tree."""
    return f"{Deps.name}.{dep.name}"


def _runtime(dep: DepSpec) -> str:
    return "node" if dep.manager in _NODE_MANAGERS else "python"
