"""Tool layers built in a container of their runtime: `tools.pip` and `tools.npm`.

pip: each tool gets its own venv under /opt/sandbox/tools/pip/<tool>, installed from the
lock's closure with `--require-hashes --no-deps`, and its own executables linked into
/opt/sandbox/tools/pip/bin. npm: each tool gets its own tree, and its own layer, under
/opt/sandbox/tools/npm/<tool>, installed by `npm ci` from a package-lock holding the tool's
closure out of the lock's; executables are <tool>/node_modules/.bin.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from builder.core.errors import BuildError
from builder.core.keys import RECIPES, sha256_of
from builder.engine.step import INPUT_DIR, StepContext, download_cache_mount
from builder.lock import managers
from builder.model.lockfile import NodeLock
from builder.model.toolinputs import NpmToolsInputs, PipTool, PipToolsInputs
from builder.model.typed import write_inputs
from builder.realize.recipes.common import StepResult, run_into_prefix, verify_installed
from builder.store.cache import Layer, NodeEntry
from builder.store.layers import LayerFile

PIP_PREFIX = "/opt/sandbox/tools/pip"
NPM_PREFIX = "/opt/sandbox/tools/npm"

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
        key = sha256_of({"recipe": RECIPES["tools"], "npm": spec, "closure": closure, "in": stage})
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
