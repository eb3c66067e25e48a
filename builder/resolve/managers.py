"""The files package managers read, rendered from sandbox.lock's pins.

Lock time and build time meet here: `sandbox lock` stores what a manager resolved (pip's
report, npm's package-lock) as plain pins, and the build hands the manager the very same
files again, rendered deterministically from those pins, so it installs exactly the lock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from builder.core import patterns

# npm package-lock fields that change what `npm ci` installs; the rest (license, funding,
# engines, deprecated) is left out of sandbox.lock to keep it readable.
NPM_FIELDS = (
    "name",  # set when the path's name is an alias (`npm:@openai/codex@0.1-linux-x64`)
    "version",
    "resolved",
    "integrity",
    "link",
    "dev",
    "optional",
    "devOptional",
    "peer",
    "inBundle",
    "hasInstallScript",
    "bin",
    "os",
    "cpu",
    "libc",
    "dependencies",
    "optionalDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "bundleDependencies",
)
NPM_ROOT = "sandbox-tools"
_PIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def npm_dependency(spec: str) -> tuple[str, str]:
    """`typescript@5` -> ("typescript", "5"); a bare name takes any stable version."""
    name = patterns.npm_name(spec)
    rest = spec[len(name) :]
    return name, rest.removeprefix("@") or "*"


def npm_package_json(specs: Sequence[str], name: str = NPM_ROOT) -> str:
    deps = dict(sorted(npm_dependency(s) for s in specs))
    return _json({"name": name, "private": True, "dependencies": deps})


def npm_packages_from_lock(lockfile: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pins of a package-lock.json (v2/v3): one entry per installed path, root excluded."""
    found = []
    for path, entry in sorted(lockfile.get("packages", {}).items()):
        if path == "":
            continue
        pin = {k: entry[k] for k in NPM_FIELDS if k in entry}
        found.append({"path": path, **pin})
    return found


def npm_package_lock(
    specs: Sequence[str], packages: Sequence[Mapping[str, Any]], name: str = NPM_ROOT
) -> str:
    """The package-lock.json `npm ci` installs from, rebuilt from the pins."""
    deps = dict(sorted(npm_dependency(s) for s in specs))
    tree: dict[str, Any] = {"": {"name": name, "dependencies": deps}}
    for pkg in packages:
        tree[pkg["path"]] = {k: v for k, v in pkg.items() if k != "path"}
    return _json({"name": name, "lockfileVersion": 3, "requires": True, "packages": tree})


def npm_closure(packages: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    """The pins one top-level package needs, from a package-lock's pins (`npm_packages_from_
    lock`): it, and every dependency found the way node does, in the nearest `node_modules`
    from the dependent's own folder up to the root. Paths stay as they are, so the subset is
    itself a valid package-lock tree for a project depending on `name` alone."""
    by_path = {str(pkg["path"]): pkg for pkg in packages}
    wanted, todo = set(), [f"node_modules/{name}"]
    while todo:
        path = todo.pop()
        if path in wanted or path not in by_path:
            continue
        wanted.add(path)
        pkg = by_path[path]
        for field in ("dependencies", "optionalDependencies", "peerDependencies"):
            for dep in pkg.get(field) or {}:
                found = _resolve_from(by_path, path, dep)
                if found is not None:
                    todo.append(found)
    return [by_path[path] for path in sorted(wanted)]


def _resolve_from(by_path: Mapping[str, Any], path: str, dep: str) -> str | None:
    """Where node finds `dep` when required from the package at `path`."""
    folder = path
    while True:
        candidate = f"{folder}/node_modules/{dep}" if folder else f"node_modules/{dep}"
        if candidate in by_path:
            return candidate
        if not folder:
            return None
        head, sep, _ = folder.rpartition("/node_modules/")
        folder = head if sep else ""


def pip_requirements(packages: Sequence[Mapping[str, Any]]) -> str:
    """A `--require-hashes` requirements file pinning every package of a closure."""
    lines = []
    for pkg in packages:
        name, version, sha = pkg["name"], pkg["version"], pkg["sha256"]
        if not (_PIN.fullmatch(name) and _PIN.fullmatch(version) and _SHA256.fullmatch(sha)):
            msg = f"not a pin: {pkg}"
            raise ValueError(msg)
        lines.append(f"{name}=={version} --hash=sha256:{sha}")
    return "\n".join(lines) + "\n"


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"
