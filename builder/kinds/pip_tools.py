"""The `tools.pip` node: Python tools, each in its own venv, built in a container of python.

Each tool gets its own venv under /opt/sandbox/tools/pip/<tool>, installed from the lock's
closure with `--require-hashes --no-deps`, and its own executables linked into
/opt/sandbox/tools/pip/bin. Locked by pip's own resolver (`resolve/tools.py`), one closure per
tool, against the very python the image runs.

Recipe versions: the tool kinds' (`layer.TOOLS_RECIPE`).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping
from typing import Any

from builder.engine.step import INPUT_DIR, StepContext, download_cache_mount
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
from builder.kinds.layer import TOOLS_PREVIOUS, TOOLS_RECIPE, run_into_prefix, verify_installed
from builder.kinds.purls import package, pep503, purl
from builder.kinds.rules import pip_kept_and_todo
from builder.kinds.runtime import runtime_node
from builder.model.lockfile import NodeKind, NodeLock
from builder.model.spec import Spec
from builder.model.toolinputs import PipTool, PipToolsInputs
from builder.model.typed import write_inputs
from builder.resolve import managers
from builder.resolve.tools import resolve_pip_tools

PIP_PREFIX = "/opt/sandbox/tools/pip"

# Run by each tool's venv python: link the tool's own executables into the shared bin folder
# and list every installed distribution, so the build can compare it with the lock.
_LINK_AND_LIST = r"""
import importlib.metadata as md, os, sys
tool, venv, bindir = sys.argv[1:4]
dist = md.distribution(tool)
scripts = [str(f) for f in dist.files or [] if str(f).startswith("../../../bin/")]
exes = sorted({s.rsplit("/", 1)[1] for s in scripts})
entry = [ep.name for ep in dist.entry_points if ep.group == "console_scripts"]
exes += sorted(set(entry) - set(exes))
for exe in exes:
    link = os.path.join(bindir, exe)
    if os.path.lexists(link):
        sys.exit(f"@@clash {exe} is provided by two pip tools")
    os.symlink(os.path.join("..", os.path.basename(venv), "bin", exe), link)
for d in md.distributions(path=[p for p in sys.path if p.startswith(venv)]):
    print("@@dist", d.metadata["Name"], d.version)
"""


# Prints the pip wheel the image's python makes venvs with (Debian keeps it apart from the
# stdlib); each tool's venv is made without pip and that wheel's pip installs into it, which
# spares 3 s and 25 MB (pip + setuptools) per tool.
_PIP_WHEEL = r"""
import ensurepip, glob, os
bundled = os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl")
found = sorted(glob.glob("/usr/share/python-wheels/pip-*.whl")) or sorted(glob.glob(bundled))
print(found[-1] if found else "")
"""


def build_pip_tools(ctx: StepContext, node: NodeLock) -> StepResult:
    tools = node.inputs_as(PipToolsInputs).tools
    files = {"link.py": _LINK_AND_LIST, "pip_wheel.py": _PIP_WHEEL}
    lines = [
        f"mkdir -p {PIP_PREFIX}/bin",
        f"PIP_WHEEL=$(python3 {INPUT_DIR}/pip_wheel.py)",
        '[ -n "$PIP_WHEEL" ] || { echo "python3 has no pip wheel for venvs" >&2; exit 1; }',
    ]
    for tool in sorted(tools):
        venv = f"{PIP_PREFIX}/{tool}"
        pins = [write_inputs(pin) for pin in tools[tool].packages]
        files[f"{tool}.txt"] = managers.pip_requirements(pins)
        lines += [
            f"echo @@tool {shlex.quote(tool)}",
            f"python3 -m venv --without-pip {shlex.quote(venv)}",
            f'{shlex.quote(venv)}/bin/python "$PIP_WHEEL/pip" install --quiet '
            f"--disable-pip-version-check --no-deps --require-hashes -r {INPUT_DIR}/{tool}.txt",
            f"{shlex.quote(venv)}/bin/python {INPUT_DIR}/link.py {shlex.quote(tool)} "
            f"{shlex.quote(venv)} {PIP_PREFIX}/bin",
        ]
    mounts = [download_cache_mount(ctx.cache, "pip", "/root/.cache/pip")]
    with run_into_prefix(
        ctx, node, "\n".join(lines), what="tools.pip: pip install", files=files, mounts=mounts
    ) as capture:
        _verify_pip(ctx.cache.log_path(node.name).read_text(errors="replace"), tools)
        layer = capture()
    return StepResult(layers=[layer], env={"PATH": f"{PIP_PREFIX}/bin"})


def _verify_pip(log: str, tools: Mapping[str, PipTool]) -> None:
    """Each venv holds exactly its locked closure (plus the pip its python ships)."""
    installed: dict[str, dict[str, str]] = {}
    current = ""
    for line in log.splitlines():
        words = line.split()
        if words[:1] == ["@@tool"] and len(words) == 2:
            current = words[1]
            installed[current] = {}
        elif words[:1] == ["@@dist"] and len(words) == 3 and current:
            installed[current][_normalize(words[1])] = words[2]
    for tool, locked in tools.items():
        pins = {_normalize(p.name): p.version for p in locked.packages}
        got = {n: v for n, v in installed.get(tool, {}).items() if n in pins or n not in _SEEDED}
        verify_installed(got, pins, node=f"tools.pip ({tool})")


_SEEDED = ("pip", "setuptools", "wheel")  # what `python -m venv` puts in every venv


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


class PipTools(KindBase):
    """`[tools].pip`: Python tools, one venv each."""

    name = "tools.pip"
    stack = NodeKind.TOOLS
    recipe = TOOLS_RECIPE
    previous = TOOLS_PREVIOUS
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
        return {"python": python, "tools": dict(sorted(tools.items()))}

    def build(self, ctx: StepContext, node: NodeLock) -> StepResult:
        return build_pip_tools(ctx, node)

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
