"""What `sandbox check` runs inside the image, running it, and reading back what happened.

One container runs one shell script, as Risoluto runs the agent: through the image's own
ENTRYPOINT, as `bash -lc` with `umask 077` first (and once more in each `--shell` login shell,
without the entrypoint's steps). A probe per declared program, each under `timeout`, its
exit code and first lines of output printed between markers. Which programs: bash, base64 and
git (what every agent needs), what each node's kind asks (`Kind.probes`: each runtime with the
flag it answers to, the npm tools' executables, every executable pip put on PATH, found in the
image so a broken link shows, each `[tools.bin]` executable, the Python libraries a `[deps]`
pip tree installs ...), and what the overlay relies on (iptables, getent, awk for an egress
allowlist). A tool is run with `--version`, else `--help`: some answer only one of them.

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
from builder.engine.interface import Confinement
from builder.image.assemble import DEFAULT_PATH
from builder.kinds import KINDS
from builder.kinds.kind import Finder, Probe
from builder.model.agents import reports_version
from builder.model.lockfile import NodeLock, stack
from builder.model.spec import Spec
from builder.orchestrator.overlay import make_overlay
from builder.store.cache import Cache

TIMEOUT = 60
CHECK_UID = 12345
# The entrypoint's steps before the agent (spawn.ts buildEntrypointScript), and a write.
_HOME_SCRIPT = 'rm -rf "$CODEX_HOME" && mkdir -p "$CODEX_HOME" && : > "$CODEX_HOME/config.toml"'
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
# Finds a Finder's executables: every entry of a folder, owned by the first folder its link
# points into (`../<owner>/bin/<exe>`), each run as a tool.
_FIND_LOOP = """for exe in {folder}/*; do
  [ -e "$exe" ] || [ -L "$exe" ] || continue
  name=${{exe##*/}}; target=$(readlink "$exe"); owner=${{target#../}}; owner=${{owner%%/*}}
  printf '@@found %s %s %s\\n' {label} "$owner" "$name"
  tool {label}" $name" "$name"
done
"""


@dataclass(frozen=True, kw_only=True)
class Outcome:
    check: str
    code: int
    output: tuple[str, ...]
    plain: str = ""  # not found (127): where `sh -c` finds the program, if it does


@dataclass(frozen=True, kw_only=True)
class Plan:
    probes: tuple[Probe, ...]
    finders: tuple[Finder, ...]  # executables found in the image, then run (pip tools')
    refused: tuple[str, ...]  # names too odd to put in a command, as checks


def plan_probes(spec: Spec, nodes: Mapping[str, NodeLock]) -> Plan:
    """What every agent needs (bash, base64, git), what each node's kind asks (in stack
    order), and what the overlay relies on."""
    probes = [Probe(check=name, argv=(name, "--version")) for name in ("bash", "base64", "git")]
    finders: list[Finder] = []
    refused: list[str] = []
    for name in stack(nodes):
        asked = KINDS.of(name).probes(nodes[name], spec)
        probes += asked.run
        finders += asked.find
        refused += asked.refused
    if spec.sandbox.egress_allowlist:
        probes += [
            Probe(check="overlay iptables", argv=("iptables", "--version")),
            Probe(check="overlay getent", argv=("getent", "--version")),
            Probe(check="overlay awk", argv=("awk", 'BEGIN { print "awk runs" }')),
        ]
    return Plan(probes=tuple(probes), finders=tuple(finders), refused=tuple(refused))


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
    for finder in plan.finders:
        lines.append(_FIND_LOOP.format(folder=finder.folder, label=shlex.quote(finder.label)))
    lines.append("exit 0\n")
    return "".join(lines)


def parse(output: str) -> tuple[list[Outcome], dict[str, dict[str, list[str]]]]:
    """The probes' outcomes in order, and for each finder's label, owner -> the executables
    found for it."""
    outcomes: list[Outcome] = []
    found: dict[str, dict[str, list[str]]] = {}
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
        elif line.startswith("@@found "):
            label, owner, exe = [*line.removeprefix("@@found ").split(" ", 2), "", ""][:3]
            found.setdefault(label, {}).setdefault(owner, []).append(exe)
    close()
    return outcomes, found


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
    owners = sum(len(finder.owners) for finder in plan.finders)
    timeout = 60.0 + 2 * TIMEOUT * (len(plan.probes) + 4 * owners)
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
    outcomes, finds = parse(output)
    if code != 0 or not outcomes:
        tail = " | ".join(output.strip().splitlines()[-3:])
        msg = (
            f"the check script could not run in {ref} as uid {spawn.uid} with "
            f"`{LOGIN_SHELL} -lc` after {entrypoint_of(config)}, as Risoluto starts the agent "
            f"(exit {code}): {tail}"
        )
        raise CheckError(msg)
    pinned = {p.check: p.version for p in plan.probes if p.version is not None}
    ran = f"{spawn.flags()} IMAGE {LOGIN_SHELL} -lc 'umask 077; <probes>' ({entrypoint_of(config)})"
    results.append(CheckResult(check="docker run", ok=True, detail=ran))
    results += [
        entrypoint_result(o.check, o.code, o.output[0] if o.output else "", spawn.uid, chosen)
        or pinned_result(o, pinned)
        or _interpret(o, _owned(o, plan.finders, finds), spawn.uid)
        for o in outcomes
    ]
    results += [
        CheckResult(
            check=f"{finder.label} {tool}",
            ok=False,
            detail=f"no executable of {tool} in {finder.folder}; rebuild the image",
        )
        for finder in plan.finders
        for tool in finder.owners
        if tool not in finds.get(finder.label, {})
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
    """A probe with a version to report (an agent CLI, model/agents.py; `pinned`: check ->
    version) that ran must report the version the lock pins: one that updated itself, or
    another copy first on the login shell's PATH, is a failure. None for every other probe."""
    if outcome.code != 0 or outcome.check not in pinned:
        return None
    exe = outcome.check.rpartition(" ")[2]
    said = " ".join(outcome.output)
    if reports_version(said, pinned[outcome.check]):
        return CheckResult(check=outcome.check, ok=True, detail=f"{said[:100]} (the lock's)")
    detail = (
        f"`{LOGIN_SHELL} -lc '{exe} --version'` says {said[:100] or 'nothing'}, but the lock "
        f"pins {pinned[outcome.check]}: it updated itself, or another {exe} comes first on PATH. "
        "Rebuild the image, and keep its updater off"
    )
    return CheckResult(check=outcome.check, ok=False, detail=detail)


@dataclass(frozen=True, kw_only=True)
class Owned:
    """Who brought a found executable, and whether anyone asked for it."""

    owner: str
    asked: bool


def _owned(
    outcome: Outcome, finders: Sequence[Finder], found: Mapping[str, Mapping[str, list[str]]]
) -> Owned | None:
    """For an executable a finder found: its owner, and whether it was asked for (the owner's
    own program, named like it; all of an owner's executables when none is). None for a
    declared probe."""
    label, _, exe = outcome.check.rpartition(" ")
    if label not in {finder.label for finder in finders}:
        return None
    for owner, exes in found.get(label, {}).items():
        if exe in exes:
            own = [e for e in exes if _canonical(e) == _canonical(owner)]
            return Owned(owner=owner, asked=exe in (own or exes))
    return Owned(owner=exe, asked=True)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _interpret(outcome: Outcome, owned: Owned | None, uid: int) -> CheckResult:
    check = outcome.check
    extra = owned is not None and not owned.asked  # brought by a tool, asked by nobody
    if owned is not None and owned.owner != check.rpartition(" ")[2]:
        check += f" ({owned.owner})"
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
        assert owned is not None
        detail = f"warning: {detail} (brought by {owned.owner}, not asked for)"
        return CheckResult(check=check, ok=True, detail=detail, warning=True)
    return CheckResult(check=check, ok=False, detail=detail)
