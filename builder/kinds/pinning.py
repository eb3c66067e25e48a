"""What lock tells a reviewer that sandbox.toml does not show.

What floats: a moving base tag, a tool without an exact version. `sandbox lock` pins all of
it anyway, so builds stay reproducible; but the next `lock --update` may move it, and a
reviewer reading sandbox.toml alone cannot see to what. So lock warns on stderr, saying what
it pinned each one to and how to pin it in the spec itself.

What an image base provides (`inherited`): the base's config the image does not keep, who
the image runs as when that is not simply `[image].user`, and the runtimes the base already
has. Lock prints these as notes, derived from the lock each time, kept pins included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from builder.core import patterns
from builder.model import inherit
from builder.model.inputs import BaseInputs, ImageBase, SystemInputs
from builder.model.lockfile import NodeLock
from builder.model.spec import Spec
from builder.model.toolinputs import NpmToolsInputs, PipToolsInputs
from builder.resolve.apt import APT_RUNTIMES
from builder.resolve.managers import npm_dependency

# One exact version: `==1.2.3` or `===1.2.3`, no wildcard, no second clause.
_PIP_EXACT = re.compile(r"\s*===?\s*[A-Za-z0-9.+!-]+\s*")
_NPM_EXACT = re.compile(r"=?v?[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?")


def floating(spec: Spec, nodes: Mapping[str, NodeLock]) -> list[str]:
    """One warning per floating entry of `spec`, naming what `nodes` pinned it to."""
    found = []
    if spec.base.image and "@sha256:" not in spec.base.image:
        base = nodes["base"].inputs_as(BaseInputs) if "base" in nodes else None
        pinned = f"; locked to {base.pinned}" if isinstance(base, ImageBase) else ""
        found.append(
            f"[base].image {spec.base.image!r} is a moving tag{pinned}. It is pinned in "
            "sandbox.lock anyway; write name@sha256:<digest> to pin it in sandbox.toml too"
        )
    for requirement in spec.tools.pip:
        if not _pip_exact(requirement):
            name = patterns.pip_name(requirement)
            version = _pip_version(nodes.get("tools.pip"), name)
            found.append(_tool_warning("pip", requirement, version, f"{name}=={version}"))
    for spec_text in spec.tools.npm:
        name, wanted = npm_dependency(spec_text)
        if not _NPM_EXACT.fullmatch(wanted):
            version = _npm_version(nodes.get("tools.npm"), name)
            found.append(_tool_warning("npm", spec_text, version, f"{name}@{version}"))
    return found


def _pip_exact(requirement: str) -> bool:
    name = re.match(r"\s*[A-Za-z0-9._-]+(?:\[[^\]]*\])?", requirement)
    rest = requirement[name.end() :] if name else requirement
    return bool(_PIP_EXACT.fullmatch(rest)) and "*" not in rest


def _tool_warning(manager: str, entry: str, version: str | None, exact: str) -> str:
    pinned = f"; locked to {version}" if version else ""
    how = f"; write {exact!r} to pin it in sandbox.toml too" if version else ""
    return (
        f"[tools].{manager} {entry!r} has no exact version{pinned}. It is pinned in "
        f"sandbox.lock anyway{how}"
    )


def _pip_version(node: NodeLock | None, name: str) -> str | None:
    tool = node.inputs_as(PipToolsInputs).tools.get(name) if node else None
    for package in tool.packages if tool else ():
        if patterns.pip_name(package.name) == name:
            return package.version
    return None


def _npm_version(node: NodeLock | None, name: str) -> str | None:
    for package in node.inputs_as(NpmToolsInputs).packages if node else ():
        if package.path == f"node_modules/{name}":
            return package.version or None
    return None


def inherited(spec: Spec, nodes: Mapping[str, NodeLock]) -> list[str]:
    """One note per thing an image base provides or loses, as the lock has it."""
    if "base" not in nodes or "system" not in nodes:
        return []
    base = nodes["base"].inputs_as(BaseInputs)
    if not isinstance(base, ImageBase) or base.config is None:
        return []
    notes = inherit.dropped(base.config)
    user = inherit.choose_user(spec.image, base).note
    notes += [user] if user else []
    packages = {p.name: p.version for p in base.packages or ()}
    programs = dict(base.programs or {})
    installed = {p.name for p in nodes["system"].inputs_as(SystemInputs).packages}
    for runtime in spec.runtimes:
        has = [
            f"{p} {packages[p]}"
            for p in APT_RUNTIMES[runtime.name]
            if p in packages and p not in installed
        ]
        if runtime.provider == "apt" and has:
            notes.append(
                f"[runtimes].{runtime.name} (apt): the base has {', '.join(has)}; the image uses it"
            )
    layered = {n.removeprefix("runtime.") for n in nodes if n.startswith("runtime.")}
    apt = {r.name for r in spec.runtimes if r.provider == "apt"}
    for tools, wanted, package, program in (
        ("tools.pip", "python", "python3", "python3"),
        ("tools.npm", "node", "nodejs", "node"),
    ):
        if tools not in nodes or wanted in layered | apt or package in installed:
            continue
        if package in packages:
            notes.append(f"{tools} uses the base's {program} ({package} {packages[package]})")
        elif program in programs:
            found = programs[program]
            notes.append(f"{tools} uses the base's {found.path} {found.version}")
    return notes
