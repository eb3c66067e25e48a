"""What `sandbox check` runs inside the image, running it, and reading back what happened.

One container runs one shell script, as Risoluto runs the agent: through the image's own
ENTRYPOINT, as `bash -lc` with `umask 077` first (and once more in each `--shell` login shell,
without the entrypoint's steps). A probe per declared program, each under `timeout`, its
exit code and first lines of output printed between markers. Which programs: bash, base64 and
git (what every agent needs), each declared runtime with the flag it answers to (and the
image's own python3, node and npm when pip or npm tools run on them), the npm
tools' executables (the `bin` of each top-level package in the lock), every executable pip
put on PATH (found in the image, so a broken link shows), each `[tools.bin]` executable, and
what the overlay relies on (iptables, getent, awk for an egress allowlist), and the Python
libraries a `[deps]` pip tree installs for the image's python3 (each requested distribution's
top-level modules imported). A tool is run with `--version`, else `--help`: some answer only
one of them.

What the user asked for must pass: the pip tool's own program (the executable named like the
tool; all of its executables when none is), each npm tool's `bin`, each `[tools.bin]`, each
requested library. Other executables a pip tool brings (mypy's mypyc, stubgen, ...) are run
too, but a failure there is a warning: the user never asked for them.

The container is the one Risoluto would start for this overlay (builder/check/spawn.py), and the
script first does what Risoluto's entrypoint does before the agent runs: with an egress
allowlist, its iptables rules under `set -euo pipefail`; then CODEX_HOME made afresh in HOME;
then a file written in the workspace.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from builder.check.report import CheckResult
from builder.check.shells import (
    LOGIN_SHELL,
    entrypoint_of,
    image_path_of,
    login_miss,
    shell_result,
)
from builder.check.spawn import (
    EGRESS,
    EGRESS_SCRIPT,
    HOME_CHECK,
    WORKSPACE,
    Spawn,
    entrypoint_result,
    own_folder,
    spawn_for,
)
from builder.core.errors import CheckError
from builder.core.patterns import npm_name
from builder.engine.interface import Confinement
from builder.image.assemble import DEFAULT_PATH
from builder.model.agents import agent_versions, reports_version
from builder.model.lockfile import NodeLock
from builder.model.spec import DepMode, Spec
from builder.model.toolinputs import DepsInputs, NpmToolsInputs, PipToolsInputs
from builder.orchestrator.overlay import make_overlay
from builder.store.cache import Cache

PIP_BIN = "/opt/sandbox/tools/pip/bin"
TIMEOUT = 60
CHECK_UID = 12345
# The entrypoint's steps before the agent (spawn.ts buildEntrypointScript), and a write.
_HOME_SCRIPT = 'rm -rf "$CODEX_HOME" && mkdir -p "$CODEX_HOME" && : > "$CODEX_HOME/config.toml"'
RUNTIME_COMMANDS = {
    "node": ("node", "--version"),
    "python": ("python3", "--version"),
    "go": ("go", "version"),
    "java": ("java", "-version"),
    "rust": ("rustc", "--version"),
}
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_LINES = 3

# The script runs in a login shell (`bash -lc`, as Risoluto runs the agent) after the image's
# ENTRYPOINT, with Risoluto's umask. zsh runs it in sh emulation (after its own login files).
# Probes run in HOME (the fresh volume), not in the workspace: some tools write to their
# working folder even for --version (mypyc makes ./build). A program the login shell does not
# find (127) is looked up again the way `sh -c` would, on the image config's PATH (`@@plain`).
_PRELUDE = f"""[ -z "${{ZSH_VERSION-}}" ] || emulate sh
umask 077
cd "$HOME" 2>/dev/null || cd /
t() {{ if command -v timeout >/dev/null 2>&1; then timeout {TIMEOUT} "$@"; else "$@"; fi; }}
emit() {{ printf '@@probe %s %s\\n' "$1" "$2"; printf '%s\\n' "$3" | head -n {_LINES} \
| sed 's/^/@@out /'; }}
plain() {{
  [ "$1" -eq 127 ] || return 0
  printf '@@plain %s\\n' "$(env PATH="$image_path" sh -c 'command -v "$1"' sh "$2" 2>/dev/null)"
}}
run() {{ name=$1; shift; out=$(t "$@" </dev/null 2>&1); rc=$?; emit "$rc" "$name" "$out"
  plain "$rc" "$1"; }}
tool() {{
  name=$1; shift; out=$(t "$@" --version </dev/null 2>&1); rc=$?
  if [ $rc -ne 0 ] && [ $rc -ne 126 ] && [ $rc -ne 127 ]; then
    out=$(t "$@" --help </dev/null 2>&1); rc=$?
  fi
  emit "$rc" "$name" "$out"
  plain "$rc" "$1"
}}
"""
_PIP_LOOP = f"""for exe in {PIP_BIN}/*; do
  [ -e "$exe" ] || [ -L "$exe" ] || continue
  name=${{exe##*/}}; target=$(readlink "$exe"); owner=${{target#../}}; owner=${{owner%%/*}}
  printf '@@pip %s %s\\n' "$owner" "$name"
  tool "tools.pip $name" "$name"
done
"""


# Run by the image's python3 with distribution names: import each one's top-level modules
# (top_level.txt, else the packages and modules its RECORD installs), the one named like it
# when there is one.
_IMPORT = r"""
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


@dataclass(frozen=True, kw_only=True)
class Probe:
    check: str  # what the report calls it, e.g. "runtime.node" or "tools.npm tsc"
    argv: tuple[str, ...]
    tool: bool = False  # run as `argv --version`, else `argv --help`


@dataclass(frozen=True, kw_only=True)
class Outcome:
    check: str
    code: int
    output: tuple[str, ...]
    plain: str = ""  # not found (127): where `sh -c` finds the program, if it does


@dataclass(frozen=True, kw_only=True)
class Plan:
    probes: tuple[Probe, ...]
    pip_tools: tuple[str, ...]  # locked pip tools; their executables are found in the image
    refused: tuple[str, ...]  # npm bin names too odd to put in a command, as checks


def plan_probes(spec: Spec, nodes: Mapping[str, NodeLock]) -> Plan:
    probes = [Probe(check=name, argv=(name, "--version")) for name in ("bash", "base64", "git")]
    for runtime in spec.runtimes:
        probes.append(Probe(check=f"runtime.{runtime.name}", argv=RUNTIME_COMMANDS[runtime.name]))
    # Tools with no runtime declared run on the image's own (the base's, or Debian's).
    declared = {runtime.name for runtime in spec.runtimes}
    if "tools.pip" in nodes and "python" not in declared:
        probes.append(Probe(check="python3 (tools.pip)", argv=("python3", "--version")))
    if "tools.npm" in nodes and "node" not in declared:
        probes.append(Probe(check="node (tools.npm)", argv=("node", "--version")))
        probes.append(Probe(check="npm (tools.npm)", argv=("npm", "--version")))
    refused = []
    npm = nodes.get("tools.npm")
    for exe in npm_bins(npm.inputs_as(NpmToolsInputs)) if npm else []:
        if _SAFE.fullmatch(exe):
            probes.append(Probe(check=f"tools.npm {exe}", argv=(exe,), tool=True))
        else:
            refused.append(f"tools.npm {exe!r}")
    for tool in spec.tools.bin:
        exe = tool.binary or tool.name
        probes.append(Probe(check=f"tools.bin.{tool.name}", argv=(exe,), tool=True))
    for name, node in sorted(nodes.items()):
        deps = node.inputs_as(DepsInputs) if name.startswith("deps.") else None
        if deps is not None and deps.mode is not DepMode.STORE:
            for library in deps.requires or ():
                argv = ("python3", "-c", _IMPORT, library)
                probes.append(Probe(check=f"{name} import {library}", argv=argv))
    if spec.sandbox.egress_allowlist:
        probes += [
            Probe(check="overlay iptables", argv=("iptables", "--version")),
            Probe(check="overlay getent", argv=("getent", "--version")),
            Probe(check="overlay awk", argv=("awk", 'BEGIN { print "awk runs" }')),
        ]
    pip = nodes.get("tools.pip")
    pip_tools = tuple(sorted(pip.inputs_as(PipToolsInputs).tools)) if pip else ()
    return Plan(probes=tuple(probes), pip_tools=pip_tools, refused=tuple(refused))


def npm_bins(inputs: NpmToolsInputs) -> list[str]:
    """The executables of the top-level npm tools, from their package-lock entries' `bin`."""
    names = {npm_name(spec) for spec in inputs.tools}
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


def spawn_probes(spawn: Spawn) -> list[Probe]:
    """What Risoluto's entrypoint does before the agent runs, as probes to run first."""
    workspace = spawn.confinement.workdir or "/"
    probes = []
    if spawn.egress:
        probes.append(Probe(check=EGRESS, argv=("bash", "-c", EGRESS_SCRIPT)))
    probes.append(Probe(check=HOME_CHECK, argv=("sh", "-c", f'{_HOME_SCRIPT} && ls -ld "$HOME"')))
    write = f"cd {shlex.quote(workspace)} && : > .sandbox-check && rm .sandbox-check && pwd"
    probes.append(Probe(check=WORKSPACE, argv=("sh", "-c", write)))
    return probes


def script(plan: Plan, first: Sequence[Probe] = (), image_path: str = DEFAULT_PATH) -> str:
    """The probes as one script; `image_path` is the image config's PATH, on which `sh -c`
    (no login) looks programs up."""
    lines = [_PRELUDE, f"image_path={shlex.quote(image_path)}\n"]
    for probe in [*first, *plan.probes]:
        kind = "tool" if probe.tool else "run"
        lines.append(f"{kind} {shlex.quote(probe.check)} {shlex.join(probe.argv)}\n")
    if plan.pip_tools:
        lines.append(_PIP_LOOP)
    lines.append("exit 0\n")
    return "".join(lines)


def parse(output: str) -> tuple[list[Outcome], dict[str, list[str]]]:
    """The probes' outcomes in order, and pip tool -> the executables found for it."""
    outcomes: list[Outcome] = []
    pip: dict[str, list[str]] = {}
    current: tuple[str, int] | None = None
    lines: list[str] = []
    plain = ""

    def close() -> None:
        if current is not None:
            outcomes.append(
                Outcome(check=current[0], code=current[1], output=tuple(lines), plain=plain)
            )

    for line in output.splitlines():
        if line.startswith("@@probe "):
            close()
            code, _, name = line.removeprefix("@@probe ").partition(" ")
            current, lines, plain = (name, int(code) if code.isdigit() else -1), [], ""
        elif line.startswith("@@plain ") and current is not None:
            plain = line.removeprefix("@@plain ").strip()
        elif line.startswith("@@out ") and current is not None:
            text = line.removeprefix("@@out ").strip()
            if text:
                lines.append(text)
        elif line.startswith("@@pip "):
            owner, _, exe = line.removeprefix("@@pip ").partition(" ")
            pip.setdefault(owner, []).append(exe)
    close()
    return outcomes, pip


class Prober(Protocol):
    """The part of the engine the probes need (a fake in unit tests)."""

    def runtimes(self) -> list[str]: ...
    def run_confined(
        self, *, image: str, command: Sequence[str], confinement: Confinement, timeout: float
    ) -> tuple[int, str]: ...


def run_probes(
    *,
    engine: Prober,
    cache: Cache,
    spec: Spec,
    nodes: Mapping[str, NodeLock],
    ref: str,
    user: tuple[int, int] | None = None,
    config: Mapping[str, Any] | None = None,
    shells: Sequence[str] = (),
) -> list[CheckResult]:
    """Run the probes in `ref` as Risoluto would run it for this spec's overlay, as `user`
    (the uid:gid Risoluto runs as; None: an arbitrary non-root one, CHECK_UID): through the
    image's ENTRYPOINT (its `config`) in `bash -lc`, then again in each of `shells`' login
    shells, whose result is one check each."""
    plan = plan_probes(spec, nodes)
    results = []
    runsc = False
    if spec.sandbox.gvisor:
        runsc = "runsc" in engine.runtimes()
        if not runsc:
            detail = (
                "warning: gvisor = true but `docker info` lists no runsc runtime; the "
                "orchestrator cannot start this sandbox here. Install gVisor, or checks ran on runc"
            )
            results.append(CheckResult(check="gvisor", ok=True, detail=detail, warning=True))
    settings = make_overlay(image_ref=ref, sandbox=spec.sandbox)["codex"]["sandbox"]
    chosen = user is not None
    user = user or (CHECK_UID, CHECK_UID)
    config = config or {}
    image_path = image_path_of(config)
    timeout = 60.0 + 2 * TIMEOUT * (len(plan.probes) + 4 * len(plan.pip_tools))
    workspace, archive = cache.scratch("check-workspace-"), cache.scratch("check-archive-")
    try:
        own_folder(workspace, user)
        own_folder(archive, user)
        spawn = spawn_for(
            settings, user=user, workspace=workspace, archive=archive, runtime_available=runsc
        )
        first = spawn_probes(spawn)
        code, output = engine.run_confined(
            image=ref,
            command=(LOGIN_SHELL, "-lc", script(plan, first, image_path)),
            confinement=spawn.confinement,
            timeout=timeout + 2 * TIMEOUT * len(first),
        )
        others = {
            shell: engine.run_confined(
                image=ref,
                command=(shell, "-lc", script(plan, (), image_path)),
                confinement=spawn.confinement,
                timeout=timeout,
            )
            for shell in shells
        }
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
        shutil.rmtree(archive, ignore_errors=True)
    outcomes, pip = parse(output)
    if code != 0 or not outcomes:
        tail = " | ".join(output.strip().splitlines()[-3:])
        msg = (
            f"the check script could not run in {ref} as uid {spawn.uid} with "
            f"`{LOGIN_SHELL} -lc` after {entrypoint_of(config)}, as Risoluto starts the agent "
            f"(exit {code}): {tail}"
        )
        raise CheckError(msg)
    asked = _asked_for(pip)
    npm = nodes.get("tools.npm")
    pinned = agent_versions(npm.inputs_as(NpmToolsInputs) if npm else None)
    ran = f"{spawn.flags()} IMAGE {LOGIN_SHELL} -lc 'umask 077; <probes>' ({entrypoint_of(config)})"
    results.append(CheckResult(check="docker run", ok=True, detail=ran))
    results += [
        entrypoint_result(o.check, o.code, o.output[0] if o.output else "", spawn.uid, chosen)
        or pinned_result(o, pinned)
        or _interpret(o, pip, spawn.uid, asked)
        for o in outcomes
    ]
    results += [
        CheckResult(
            check=f"tools.pip {tool}",
            ok=False,
            detail=f"no executable of {tool} in {PIP_BIN}; rebuild the image",
        )
        for tool in plan.pip_tools
        if tool not in pip
    ]
    results += [
        CheckResult(check=name, ok=False, detail="its bin name is not a plain file name")
        for name in plan.refused
    ]
    found = {o.check: o.code for o in outcomes}
    for shell, (shell_code, shell_output) in others.items():
        there = {o.check: o.code for o in parse(shell_output)[0]}
        results.append(shell_result(shell, shell_code, shell_output, there=there, found=found))
    return results


def pinned_result(outcome: Outcome, pinned: Mapping[str, str]) -> CheckResult | None:
    """An agent CLI (model/agents.py) that ran must report the version the lock pins: one
    that updated itself, or another copy first on the login shell's PATH, is a failure.
    None for every other probe."""
    exe = outcome.check.removeprefix("tools.npm ")
    if outcome.code != 0 or not outcome.check.startswith("tools.npm ") or exe not in pinned:
        return None
    said = " ".join(outcome.output)
    if reports_version(said, pinned[exe]):
        return CheckResult(check=outcome.check, ok=True, detail=f"{said[:100]} (the lock's)")
    detail = (
        f"`{LOGIN_SHELL} -lc '{exe} --version'` says {said[:100] or 'nothing'}, but the lock "
        f"pins {pinned[exe]}: it updated itself, or another {exe} comes first on PATH. "
        "Rebuild the image, and keep its updater off"
    )
    return CheckResult(check=outcome.check, ok=False, detail=detail)


def _asked_for(pip: Mapping[str, list[str]]) -> set[str]:
    """The pip executables the user asked for: each tool's own program (named like the tool),
    or all of a tool's executables when none is."""
    asked: set[str] = set()
    for tool, exes in pip.items():
        own = [e for e in exes if _canonical(e) == _canonical(tool)]
        asked.update(own or exes)
    return asked


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _interpret(
    outcome: Outcome, pip: Mapping[str, list[str]], uid: int, asked: set[str] | None = None
) -> CheckResult:
    check = outcome.check
    extra = False  # an executable a pip tool brings that nobody asked for
    if check.startswith("tools.pip "):
        exe = check.removeprefix("tools.pip ")
        owner = next((tool for tool, exes in pip.items() if exe in exes), exe)
        check += f" ({owner})" if owner != exe else ""
        extra = asked is not None and exe not in asked
    first = outcome.output[0][:100] if outcome.output else ""
    if outcome.code == 127 and outcome.plain:
        detail = login_miss(outcome.check.rpartition(" ")[2], outcome.plain)
        return CheckResult(check=check, ok=False, detail=detail)
    if outcome.code == 0:
        return CheckResult(check=check, ok=True, detail=first or "ran")
    hint = {
        124: f"timed out after {TIMEOUT}s",
        126: f"not executable by uid {uid}",
        127: "not found on PATH",
    }.get(outcome.code, f"exit {outcome.code}")
    detail = f"{hint}: {first}" if first else hint
    if extra:
        detail = f"warning: {detail} (brought by {owner}, not asked for)"
        return CheckResult(check=check, ok=True, detail=detail, warning=True)
    return CheckResult(check=check, ok=False, detail=detail)
