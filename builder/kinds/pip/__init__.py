"""The `tools.pip` node: Python tools, each in its own venv under /opt/sandbox/tools/pip/<tool>,
its executables linked into /opt/sandbox/tools/pip/bin.

Locked by pip's own resolver (`resolve/tools.py`), one closure per tool, against the very
python the image runs: each package's version, wheel url and sha256; the lock also records
which python3 that is (`python.py`: path, X.Y.Z, from the apt pins). Built one layer per tool
plus one of the links (`layers.py`, which says what each key hashes): each venv laid on the
host by pypa's `installer` from the locked wheels and byte-compiled for the image's python
(`venv.py`, `wheels.py`), when the lock says the interpreter, every package is a wheel with a
url, and this host's python writes the image's bytecode; else every venv by pip in one
container of python (`recipe.py`). A node laid on the host needs no container and no parent
layer (`needs_stage`), so it builds without waiting for the system layer.

Recipe versions: the tool kinds' (`layer.TOOLS_RECIPE`), then its own (`layer.PIP_RECIPE`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from builder.engine.step import StepContext
from builder.kinds.kind import (
    Declared,
    Distro,
    Finder,
    Inputs,
    KindBase,
    LockContext,
    Probe,
    Probes,
    StepResult,
)
from builder.kinds.layer import PIP_PREVIOUS, PIP_RECIPE
from builder.kinds.pip.layers import build_pip_tools, in_container
from builder.kinds.pip.python import image_python
from builder.kinds.pip.recipe import PIP_PREFIX
from builder.kinds.purls import package, pep503, purl
from builder.kinds.rules import pip_kept_and_todo
from builder.kinds.runtime import runtime_node
from builder.model.lockfile import NodeKind, NodeLock
from builder.model.spec import Spec
from builder.model.toolinputs import PipToolsInputs
from builder.resolve.tools import resolve_pip_tools


class PipTools(KindBase):
    """`[tools].pip`: Python tools, one venv each."""

    name = "tools.pip"
    stack = NodeKind.TOOLS
    recipe = PIP_RECIPE
    previous = PIP_PREVIOUS
    inputs = PipToolsInputs

    def declare(self, spec: Spec) -> list[Declared]:
        if not spec.tools.pip:
            return []
        return [Declared(name=self.name, needs=runtime_node(spec, "python"))]

    def lock(self, ctx: LockContext, name: str) -> Inputs:
        python = ctx.runtime_version("python")
        old = ctx.previous.get(name)
        old_tools = old.inputs["tools"] if old and old.inputs.get("python") == python else {}
        tools, todo = pip_kept_and_todo(
            ctx.spec.tools.pip, old_tools, lambda tool: ctx.wanted(name, [tool])
        )
        if todo:
            ctx.progress.say(f"  resolving {name} ({', '.join(sorted(todo))}) ...")
            ctx.same_as_host("python", python)
            context = ctx.context(name)
            with ctx.watch(name):
                target = ctx.platform if ctx.foreign else None
                tools.update(resolve_pip_tools(context, todo, target=target))
        closure = sum(len(t["packages"]) for t in tools.values())
        summary = f"{len(tools)} tools, {closure} packages"
        if not todo:
            ctx.progress.say(f"  kept      {name} ({summary})")
        elif len(todo) < len(tools):
            kept = ", ".join(sorted(set(tools) - set(todo)))
            ctx.progress.say(f"  resolved  {name} ({summary}; kept {kept})")
        else:
            ctx.progress.say(f"  resolved  {name} ({summary})")
        inputs: dict[str, Any] = {"python": python, "tools": dict(sorted(tools.items()))}
        interpreter = image_python(ctx.nodes)
        if interpreter is not None:
            inputs["interpreter"] = interpreter
        return inputs

    def build(self, ctx: StepContext, node: NodeLock) -> StepResult:
        return build_pip_tools(ctx, node)

    def needs_stage(self, node: NodeLock) -> bool:
        """Only when the venvs are made by pip in a container (`layers.in_container`)."""
        return bool(in_container(node))

    def placement(self, node: NodeLock) -> list[str]:
        """Each tool: assembled on the host, or in a container and why."""
        refused = in_container(node)
        return [
            f"{tool}: in a container: {refused[tool]}"
            if tool in refused
            else f"{tool}: assembled on the host"
            for tool in sorted(node.inputs_as(PipToolsInputs).tools)
        ]

    def pins(self, node: NodeLock, distro: Distro) -> Iterator[tuple[str, dict[str, Any]]]:
        for tool, closure in sorted(node.inputs_as(PipToolsInputs).tools.items()):
            for pin in closure.packages:
                yield (
                    f"{tool}-{pin.name}-{pin.version}",
                    package(
                        name=pin.name,
                        version=pin.version,
                        purl=purl("pypi", pep503(pin.name), pin.version),
                        kind="library",
                        checksums=(("SHA256", pin.sha256 or ""),),
                        note=f"venv of pip tool {tool}",
                    ),
                )

    def probes(self, node: NodeLock, spec: Spec) -> Probes:
        """Every executable the tools put in PIP_PREFIX/bin, found in the image (so a broken
        link shows), each tool's own program required; python3 when no runtime is declared."""
        run = []
        if "python" not in {r.name for r in spec.runtimes}:
            run.append(Probe(check=f"python3 ({self.name})", argv=("python3", "--version")))
        tools = tuple(sorted(node.inputs_as(PipToolsInputs).tools))
        found = Finder(label=self.name, folder=f"{PIP_PREFIX}/bin", owners=tools)
        return Probes(run=run, find=[found])
