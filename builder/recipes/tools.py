"""Tool layers built in a container of their runtime: `tools.pip` and `tools.npm`.

pip: each tool gets its own venv under /opt/sandbox/tools/pip/<tool>, installed from the
lock's closure with `--require-hashes --no-deps`, and its own executables linked into
/opt/sandbox/tools/pip/bin. npm: one tree under /opt/sandbox/tools/npm installed by `npm ci`
from a package-lock rendered from the lock; executables are node_modules/.bin.
"""

from __future__ import annotations

import shlex

from builder import managers
from builder.errors import BuildError
from builder.lockfile import NodeLock
from builder.recipes.common import (
    INPUT_DIR,
    StepContext,
    StepResult,
    capture,
    download_cache_mount,
    run_in_stage,
    verify_installed,
)

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


def build_pip_tools(ctx: StepContext, node: NodeLock) -> StepResult:
    tools = node.inputs["tools"]
    files = {"link.py": _LINK_AND_LIST}
    lines = [f"mkdir -p {PIP_PREFIX}/bin"]
    for tool in sorted(tools):
        venv = f"{PIP_PREFIX}/{tool}"
        files[f"{tool}.txt"] = managers.pip_requirements(tools[tool]["packages"])
        lines += [
            f"echo @@tool {shlex.quote(tool)}",
            f"python3 -m venv {shlex.quote(venv)}",
            f"{shlex.quote(venv)}/bin/pip install --quiet --disable-pip-version-check "
            f"--no-deps --require-hashes -r {INPUT_DIR}/{tool}.txt",
            f"{shlex.quote(venv)}/bin/python {INPUT_DIR}/link.py {shlex.quote(tool)} "
            f"{shlex.quote(venv)} {PIP_PREFIX}/bin",
        ]
    mounts = [download_cache_mount(ctx.cache, "pip", "/root/.cache/pip")]
    with run_in_stage(
        ctx, node.name, "\n".join(lines), what="tools.pip: pip install", files=files, mounts=mounts
    ) as result:
        _verify_pip(ctx.cache.log_path(node.name).read_text(errors="replace"), tools)
        layer = capture(ctx, ctx.engine(), result.container, node)
    return StepResult(layers=[layer], env={"PATH": f"{PIP_PREFIX}/bin"})


def _verify_pip(log: str, tools: dict[str, dict[str, list[dict[str, str]]]]) -> None:
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
        pins = {_normalize(p["name"]): p["version"] for p in locked["packages"]}
        got = {n: v for n, v in installed.get(tool, {}).items() if n in pins or n not in _SEEDED}
        verify_installed(got, pins, node=f"tools.pip ({tool})")


_SEEDED = ("pip", "setuptools", "wheel")  # what `python -m venv` puts in every venv


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def build_npm_tools(ctx: StepContext, node: NodeLock) -> StepResult:
    specs, packages = node.inputs["tools"], node.inputs["packages"]
    if not packages:
        msg = "tools.npm: the lock holds no packages; run `sandbox lock --update tools.npm`"
        raise BuildError(msg)
    files = {
        "package.json": managers.npm_package_json(specs),
        "package-lock.json": managers.npm_package_lock(specs, packages),
    }
    script = f"""mkdir -p {NPM_PREFIX}
cp {INPUT_DIR}/package.json {INPUT_DIR}/package-lock.json {NPM_PREFIX}/
cd {NPM_PREFIX}
npm ci --no-audit --no-fund --loglevel=warn
"""
    mounts = [download_cache_mount(ctx.cache, "npm", "/root/.npm")]
    with run_in_stage(
        ctx, node.name, script, what="tools.npm: npm ci", files=files, mounts=mounts
    ) as result:
        layer = capture(ctx, ctx.engine(), result.container, node)
    return StepResult(layers=[layer], env={"PATH": f"{NPM_PREFIX}/node_modules/.bin"})
