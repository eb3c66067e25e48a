"""What in sandbox.toml floats: a moving base tag, a tool without an exact version.

`sandbox lock` pins all of it anyway, so builds stay reproducible; but the next `lock
--update` may move it, and a reviewer reading sandbox.toml alone cannot see to what. So lock
warns on stderr, saying what it pinned each one to and how to pin it in the spec itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from builder import patterns
from builder.lockfile import NodeLock
from builder.managers import npm_dependency
from builder.spec import Spec

# One exact version: `==1.2.3` or `===1.2.3`, no wildcard, no second clause.
_PIP_EXACT = re.compile(r"\s*===?\s*[A-Za-z0-9.+!-]+\s*")
_NPM_EXACT = re.compile(r"=?v?[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?")


def floating(spec: Spec, nodes: Mapping[str, NodeLock]) -> list[str]:
    """One warning per floating entry of `spec`, naming what `nodes` pinned it to."""
    found = []
    if spec.base.image and "@sha256:" not in spec.base.image:
        base = nodes.get("base")
        pinned = f"; locked to {base.inputs['pinned']}" if base else ""
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
    tool = node.inputs["tools"].get(name) if node else None
    for package in tool["packages"] if tool else ():
        if patterns.pip_name(package["name"]) == name:
            return str(package["version"])
    return None


def _npm_version(node: NodeLock | None, name: str) -> str | None:
    for package in node.inputs["packages"] if node else ():
        if package["path"] == f"node_modules/{name}":
            return str(package.get("version", "")) or None
    return None
