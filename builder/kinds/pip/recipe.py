"""The container recipe of pip tools: each tool's venv made by `python3 -m venv` and pip in a
container of the node's parents, for locks the host cannot lay out (`layers.in_container`).

Each tool gets its own venv under PIP_PREFIX/<tool>, installed from the lock's closure with
`--require-hashes --no-deps` by the pip wheel the image's python ships, and its own
executables linked into PIP_PREFIX/bin; the whole prefix (a host folder mounted into the
container) becomes one layer, checked against the lock (`verify_pip`).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from builder.engine.step import INPUT_DIR, StepContext, download_cache_mount
from builder.kinds.kind import StepResult
from builder.kinds.layer import run_into_prefix, verify_installed
from builder.model.lockfile import NodeLock
from builder.model.toolinputs import PipTool, PipToolsInputs
from builder.model.typed import write_inputs
from builder.resolve import managers

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


def build_in_container(ctx: StepContext, node: NodeLock) -> StepResult:
    """Every tool's venv and the links, made by pip in one container: one layer."""
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
        verify_pip(ctx.cache.log_path(node.name).read_text(errors="replace"), tools)
        layer = capture()
    return StepResult(layers=[layer], env={"PATH": f"{PIP_PREFIX}/bin"})


def verify_pip(log: str, tools: Mapping[str, PipTool]) -> None:
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
