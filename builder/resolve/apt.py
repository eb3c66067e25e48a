"""Pinning the system layer: apt itself computes the closure, inside a container of the base.

The request is the spec's `[system].packages` plus the packages of `provider = "apt"`
runtimes (less those the base has installed already). apt resolves it (`apt-get install -s
--no-install-recommends`) against the base's own sources and installed packages, and
`apt-cache show pkg=version` gives the sha256 of every package it would install. A version
glob (`libvips-dev=8.14.*`) is settled first with `apt-cache madison`.

Another architecture (`ForeignArch`) is resolved by the same apt, in the host's base, without
emulation: apt is told the target is its only architecture and reads that architecture's own
lists, and its dpkg status is the target base's package set, taken from those lists.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.core import limits
from builder.core.errors import ResolutionError
from builder.engine.interface import Engine, kept_container, require_success
from builder.model.spec import Spec
from builder.resolve.debian import parse_simulation, parse_stanzas
from builder.resolve.image import BaseFacts

# What each runtime needs from Debian when its provider is "apt" (DESIGN.md §3).
APT_RUNTIMES = {
    "go": ["golang-go"],
    "java": ["default-jdk-headless"],
    "node": ["nodejs", "npm"],
    "python": ["python3", "python3-venv"],
    "rust": ["rustc", "cargo"],
}
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
# apt's state for a foreign architecture, apart from the host's own (scratch: never a layer).
_FOREIGN = "/tmp/sandbox-apt-foreign"
_MARK_INSTALLED = "awk '/^Package:/ {print; print \"Status: install ok installed\"; next} {print}'"


@dataclass(frozen=True, kw_only=True)
class ForeignArch:
    """The architecture apt resolves for, and the packages its base has installed."""

    arch: str  # Debian's name, e.g. "arm64"
    installed: Sequence[Mapping[str, str]]  # the target base's pins: {name, version, ...}

    def setup(self) -> str:
        """Shell lines pointing apt at `arch` alone, its base's packages marked installed.

        The status file is the target's Packages stanzas of exactly the base's pins, so apt
        sees the dependencies the target base satisfies, as on a machine of that arch.
        """
        pins = shlex.join(f"{p['name']}={p['version']}" for p in self.installed) or "--"
        conf = (
            f'APT::Architecture "{self.arch}";\n'
            f'APT::Architectures {{ "{self.arch}"; }};\n'
            f'Dir::State::Lists "{_FOREIGN}/lists/";\n'
            f'Dir::State::status "{_FOREIGN}/status";\n'
            f'Dir::Cache "{_FOREIGN}/cache/";\n'
        )
        return (
            f"mkdir -p {_FOREIGN}/lists/partial {_FOREIGN}/cache/archives/partial\n"
            f"printf %s {shlex.quote(conf)} > {_FOREIGN}/apt.conf\n"
            f"export APT_CONFIG={_FOREIGN}/apt.conf\n"
            f": > {_FOREIGN}/status\n"
            f"{apt_update()}\n"
            f"apt-cache show {pins} 2>/dev/null | {_MARK_INSTALLED} > {_FOREIGN}/status.new\n"
            f"mv {_FOREIGN}/status.new {_FOREIGN}/status\n"
        )


def apt_update() -> str:
    """`apt-get update`, each download bounded (limits.py), quiet unless it fails.

    apt-get update exits 0 when an index could not be fetched (it keeps the old one, here
    none), which would surface later as "Unable to locate package": fail here instead,
    saying it is the network. Its errors are kept in a variable, not a file: on a full disk
    a file would stay empty, and the reason with it.
    """
    wait = f"{limits.net_timeout():g}s ({limits.NET_TIMEOUT_ENV})"
    return f"""apt_err=$(apt-get {limits.apt_options()} update -qq 2>&1 >/dev/null) \\
  || {{ printf '%s\\n' "$apt_err" >&2; exit 100; }}
[ -z "$apt_err" ] || printf '%s\\n' "$apt_err" >&2
case "$apt_err" in *'Failed to fetch'*)
  echo "apt-get update could not download the package lists from the mirror (above)." >&2
  echo "Is the mirror reachable? Each try waited {wait}." >&2
  exit 100
esac"""


def system_request(spec: Spec, base: BaseFacts | None = None) -> list[str]:
    """Everything the system layer is asked to install, sorted.

    Besides `[system].packages`: the packages of `provider = "apt"` runtimes, and Debian's
    python (node) when pip (npm) tools or deps need one that no runtime layer provides. What
    the base already has counts (`base`): a package of those it has installed is not asked
    for again (the base's version serves), and a python3 (node and npm) on the base's PATH
    that dpkg did not install, such as a python.org or nodejs.org build, is used as it is.
    """
    base = base or BaseFacts()
    implied: set[str] = set()
    for runtime in spec.runtimes:
        if runtime.provider == "apt":
            implied.update(APT_RUNTIMES[runtime.name])
    layered = {r.name for r in spec.runtimes if r.provider != "apt"}
    managers = {d.manager for d in spec.deps}
    own_python = "python3" in base.programs and "python3" not in base.packages
    own_node = {"node", "npm"} <= set(base.programs)
    if (spec.tools.pip or managers & {"pip", "uv"}) and not ("python" in layered or own_python):
        implied.update(APT_RUNTIMES["python"])
    if (spec.tools.npm or managers & {"npm", "pnpm"}) and not ("node" in layered or own_node):
        implied.update(APT_RUNTIMES["node"])
    implied -= set(base.packages)
    return sorted(implied | set(spec.system_packages))


def resolve_system(
    request: list[str],
    *,
    keep: dict[str, str],
    engine: Engine,
    image: str,
    log_dir: Path,
    foreign: ForeignArch | None = None,
) -> list[dict[str, Any]]:
    """The full closure of `request` as [{name, version, sha256}], sorted by name.

    `keep` holds name -> version pins to hold fixed (for `lock --update NAME`), also over a
    request of the name without a version; `foreign`
    resolves for another architecture than the one `image` runs.
    """
    if not request:
        return []
    setup = foreign.setup() if foreign else ""
    madison, log = resolve_logs(log_dir, foreign)
    exact = _settle_globs(request, engine=engine, image=image, log=madison, setup=setup)
    wanted = {_name(r): r for r in exact}
    for name, version in keep.items():
        if wanted.get(name, name) == name:  # not asked for, or asked for without a version
            wanted[name] = f"{name}={version}"
    args = shlex.join(sorted(wanted.values()))
    script = f"""{setup}{apt_update()}
echo @@sim
apt-get install -s -y --no-install-recommends {args}
echo @@show
pins=$(apt-get install -s -y --no-install-recommends {args} \\
  | sed -n 's/^Inst \\([^ ]*\\) \\(\\[[^]]*\\] \\)\\{{0,1\\}}(\\([^ ]*\\) .*/\\1=\\3/p')
if [ -n "$pins" ]; then apt-cache show $pins; fi
"""
    output = _run(script, engine=engine, image=image, log=log, what="resolving system packages")
    sim_text, _, show_text = output.partition("@@show")
    closure = parse_simulation(sim_text)
    shown = {(s.get("Package"), s.get("Version")): s for s in parse_stanzas(show_text)}
    packages = []
    for name in sorted(closure):
        stanza = shown.get((name, closure[name]))
        if stanza is None or "SHA256" not in stanza:
            msg = f"apt listed {name} {closure[name]} but `apt-cache show` gave no SHA256 for it"
            raise ResolutionError(msg)
        packages.append({"name": name, "version": closure[name], "sha256": stanza["SHA256"]})
    return packages


def resolve_logs(log_dir: Path, foreign: ForeignArch | None = None) -> list[Path]:
    """The logs `resolve_system` writes, in turn: apt-cache madison's, then apt's."""
    suffix = f"-{foreign.arch}" if foreign else ""
    return [log_dir / f"apt-madison{suffix}.log", log_dir / f"apt-resolve{suffix}.log"]


def _settle_globs(
    request: list[str], *, engine: Engine, image: str, log: Path, setup: str
) -> list[str]:
    globbed = [r for r in request if "=" in r and "*" in r]
    if not globbed:
        return request
    names = shlex.join(_name(r) for r in globbed)
    listing = f'for p in {names}; do echo "@@pkg $p"; apt-cache madison "$p"; done\n'
    script = f"{setup}{apt_update()}\n{listing}"
    output = _run(script, engine=engine, image=image, log=log, what="listing package versions")
    versions: dict[str, list[str]] = {}
    current = ""
    for line in output.splitlines():
        if line.startswith("@@pkg "):
            current = line.split()[1]
            versions[current] = []
        elif "|" in line and current:
            versions[current].append(line.split("|")[1].strip())
    settled = [r for r in request if r not in globbed]
    for entry in globbed:
        name, pattern = entry.split("=", 1)
        match = next((v for v in versions.get(name, []) if fnmatch.fnmatchcase(v, pattern)), None)
        if match is None:
            known = ", ".join(versions.get(name, [])) or "none"
            msg = (
                f"[system].packages: no version of {name} matches {pattern!r} "
                f"(available: {known}). Change the pattern"
            )
            raise ResolutionError(msg)
        settled.append(f"{name}={match}")
    return settled


def _run(script: str, *, engine: Engine, image: str, log: Path, what: str) -> str:
    result = engine.run(image=image, script=script, log=log, env=APT_ENV, mounts=[], network=True)
    with kept_container(engine, result):
        require_success(result, what=what, log=log, error=ResolutionError)
    return log.read_text(errors="replace")


def _name(requirement: str) -> str:
    return requirement.split("=", 1)[0]
