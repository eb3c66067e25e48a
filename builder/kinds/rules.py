"""What lock checks of what resolvers found, and reads off the nodes it has locked.

Pure functions of the spec and locked inputs (no engine, no network): which runtime version
the image gets (its layer's, Debian's package's, or the base's program), whether an apt runtime
is the version asked for, what a base request is and whether old inputs answer it, what an
`--update` of base packages moves, and what apt resolves for another platform.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from builder.core import patterns
from builder.core.errors import ResolutionError
from builder.core.platforms import host_platform
from builder.model.fields import Fields
from builder.model.inherit import choose_user
from builder.model.inputs import BaseInputs
from builder.model.lockfile import NodeLock
from builder.model.spec import Spec
from builder.model.typed import read_inputs
from builder.resolve.apt import APT_RUNTIMES, ForeignArch, system_request
from builder.resolve.image import BaseFacts

# The program a runtime's tools run, as the base's PATH has it (resolve/image.py).
RUNTIME_PROGRAMS = {"python": "python3", "node": "node"}
# What `check` runs to prove a runtime works.
RUNTIME_COMMANDS = {
    "node": ("node", "--version"),
    "python": ("python3", "--version"),
    "go": ("go", "version"),
    "java": ("java", "-version"),
    "rust": ("rustc", "--version"),
}


def runtime_version(spec: Spec, nodes: Mapping[str, NodeLock], runtime: str) -> str:
    """The version of `runtime` the image of locked `nodes` gets: its layer's, or Debian's
    package's (the system layer's, else the base's), or the base's own program."""
    layered = nodes.get(f"runtime.{runtime}")
    if layered is not None:
        return str(layered.inputs["version"])
    package = APT_RUNTIMES[runtime][0]
    for pin in nodes["system"].inputs["packages"]:
        if pin["name"] == package:
            return str(pin["version"])
    base = BaseFacts.of(nodes["base"].inputs)
    if package in base.packages:
        return base.packages[package]
    program = base.programs.get(RUNTIME_PROGRAMS[runtime])
    if program is not None:
        return str(program["version"])
    msg = (
        f"{spec.path}: no {runtime} in the image: neither the base nor the system "
        f"layer has {RUNTIME_PROGRAMS[runtime]}. Add [runtimes] {runtime}"
    )
    raise ResolutionError(msg)


def foreign_arch(spec: Spec, platform: str, base: Mapping[str, Any]) -> ForeignArch:
    """What apt resolves for `platform` (not this machine's) on a base with inputs `base`."""
    if "packages" not in base:
        msg = (
            f"{spec.path}: [image].platforms: {platform} is not this machine's "
            f"platform ({host_platform()}), and its base was locked before the lock read "
            "an image base's packages, which its system packages are resolved against. "
            "Run `sandbox lock --update base`"
        )
        raise ResolutionError(msg)
    return ForeignArch(arch=platform.split("/")[1], installed=base["packages"])


def base_upgrades(base: NodeLock, update: list[str] | None, taken: list[str]) -> list[str]:
    """Names in `update` that the base's package set holds and `taken` does not request."""
    installed = {p["name"] for p in base.inputs.get("packages", [])}
    return sorted(n for n in update or [] if n in installed and n not in taken)


def npm_path_of(path: str, names: list[str]) -> bool:
    """Whether package-lock path `path` installs one of `names`."""
    return any(path == f"node_modules/{n}" or path.endswith(f"/node_modules/{n}") for n in names)


def check_apt_runtimes(
    spec: Spec, packages: list[dict[str, Any]], *, base: Mapping[str, str] | None = None
) -> None:
    """A runtime from apt must be the version the spec asks for, else say what apt has.

    A package the base has installed (`base`: name -> version) and the system layer does not
    upgrade is the base's version.
    """
    versions = {**(base or {}), **{p["name"]: p["version"] for p in packages}}
    for runtime in spec.runtimes:
        if runtime.provider != "apt":
            continue
        package = APT_RUNTIMES[runtime.name][0]
        found = versions.get(package, "")
        upstream = upstream_version(found)
        if runtime.name == "java":  # default-jdk-headless 2:1.17-74 is Java 17
            upstream = upstream.removeprefix("1.")
        if not (upstream == runtime.version or upstream.startswith(runtime.version + ".")):
            short = ".".join(upstream.split(".")[:2])
            msg = (
                f"{spec.path}: [runtimes].{runtime.name}: apt has {package} {found}, which is "
                f"not {runtime.name} {runtime.version}. Write version = {short!r}, or use "
                'provider = "official" (or "pypi") for another version'
            )
            raise ResolutionError(msg)


def upstream_version(debian_version: str) -> str:
    """`2:1.19~1` -> `1.19`, `3.11.2-1+b1` -> `3.11.2`: epoch and Debian suffixes dropped."""
    return re.split(r"[-~+]", debian_version.split(":", 1)[-1])[0]


def base_request(spec: Spec) -> dict[str, Any]:
    if spec.base.bootstrap:
        boot = spec.base.bootstrap
        return {"bootstrap": {"suite": boot.suite, "mirror": boot.mirror, "variant": boot.variant}}
    return {"image": spec.base.image}


def answers(inputs: Any, request: dict[str, Any]) -> bool:
    """Whether the old inputs were resolved from this same request."""
    return all(inputs.get(k) == v for k, v in request.items())


def describe_base(inputs: Any) -> str:
    if "bootstrap" in inputs:
        boot = inputs["bootstrap"]
        return f"debootstrap {boot['suite']}, {len(inputs['packages'])} packages"
    os = inputs.get("os", {})
    has = [f"{os.get('id', '?')} {os.get('version_id', '')}".strip()]
    has.append(f"{len(inputs.get('packages', []))} packages")
    has += [f"{n} {p['version']}" for n, p in sorted(inputs.get("programs", {}).items())]
    return f"{inputs['image']} -> {inputs['pinned']}; {', '.join(has)}"


def system_request_inputs(spec: Spec, base: Mapping[str, Any]) -> dict[str, Any]:
    """What the system node is resolved from: the apt request and the user it makes (an old
    lock whose inputs answer the same keeps its pins)."""
    request = system_request(spec, BaseFacts.of(base))
    user = choose_user(spec.image, read_inputs(BaseInputs, Fields(base, "base")))
    inputs: dict[str, Any] = {"request": request, "user": user.user, "workdir": user.workdir}
    if user.uid is not None:
        inputs["uid"] = user.uid
    if user.owner:
        inputs["owner"] = user.owner
    return inputs


def pip_kept_and_todo(
    requirements: Sequence[str],
    old_tools: Mapping[str, Any],
    wanted: Callable[[str], bool],
) -> tuple[dict[str, Any], dict[str, str]]:
    """The pip tools whose old closure still answers their requirement (and `wanted` does
    not ask to update), and the rest to resolve: tool name -> requirement."""
    kept: dict[str, Any] = {}
    todo: dict[str, str] = {}
    for requirement in requirements:
        tool = patterns.pip_name(requirement)
        before = old_tools.get(tool)
        if before and before["requirement"] == requirement and not wanted(tool):
            kept[tool] = before
        else:
            todo[tool] = requirement
    return kept, todo


def npm_previous(
    old: Mapping[str, Any] | None, update: list[str] | None
) -> list[dict[str, Any]] | None:
    """The old package-lock paths npm starts from (`old`: tools.npm's inputs on the same node),
    less those `update` moves; None (resolve afresh) when the whole node updates."""
    if old is None:
        return None
    previous = list(old["packages"])
    if update is None:
        return previous
    if not update or "tools.npm" in update:
        return None
    return [p for p in previous if not npm_path_of(p["path"], update)]
