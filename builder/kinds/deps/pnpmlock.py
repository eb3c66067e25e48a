"""A pnpm-lock.yaml read into the isolated layout pnpm 10 links for it, or why it cannot be.

pnpm's isolated `node_modules` (nodeLinker `isolated`, its default) holds each package of the
lock once, at `.pnpm/<folder>/node_modules/<name>`, where `<folder>` is its depPath made a file
name (pnpm's depPathToFilename: `@scope/name@1.0.0` -> `@scope+name@1.0.0`); beside it, a
symlink per dependency to that dependency's folder; `node_modules/<alias>` links each of the
project's own dependencies, and `.pnpm/node_modules/<alias>` the hoisted ones (hoist-pattern
`*`): pnpm walks the dependency graph from the project's dependencies (`_walk`, as its
graphWalker does: the children of a level are all marked seen before the next level is walked,
one parent's subtree at a time), sorts what it met by depth, then depPath, and hoists each
child alias not already taken, first come first served.

Only what this module lays out is accepted; anything else is refused with `NotOnHost` naming
the package or key, and the tree is installed by pnpm in a container: another lockfileVersion
than 9.0, settings or overrides, patches, catalogs, workspaces, links and local folders, peer-
suffixed snapshots, git or folder resolutions, `requiresBuild`, platform-restricted or bundled
packages, a package whose folder name pnpm would hash, and executables (`hasBin`) of a package
that is not a direct dependency only (pnpm links those inside the virtual store too).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from builder.kinds.npm.tree import NotOnHost

_SETTINGS = {"autoInstallPeers": True, "excludeLinksFromLockfile": False}
_TOP_KEYS = {"lockfileVersion", "settings", "importers", "packages", "snapshots"}
_IMPORTER_KEYS = {"dependencies", "devDependencies", "optionalDependencies"}
_PACKAGE_KEYS = {
    "resolution",
    "engines",
    "hasBin",
    "deprecated",
    "peerDependencies",
    "peerDependenciesMeta",
    "license",
}
_SNAPSHOT_KEYS = {"dependencies", "optionalDependencies", "transitivePeerDependencies", "optional"}
_MAX_FOLDER = 120  # pnpm's virtualStoreDirMaxLength
REGISTRY = "https://registry.npmjs.org/"


@dataclass(frozen=True, kw_only=True)
class Package:
    """One package of the lock: where its tarball is and what it links to."""

    dep_path: str  # "cowsay@1.6.0", "@scope/name@1.0.0"
    name: str
    version: str
    folder: str  # its folder under node_modules/.pnpm
    url: str
    integrity: str
    has_bin: bool
    deps: Mapping[str, str] = field(default_factory=dict)  # alias -> depPath


@dataclass(frozen=True, kw_only=True)
class Layout:
    """The lock's packages by depPath, the project's own dependencies and the hoisted ones
    (alias -> depPath, in the order pnpm records them)."""

    packages: Mapping[str, Package]
    direct: Mapping[str, str]
    hoisted: Mapping[str, str]


def read_layout(text: str) -> Layout:
    """The layout pnpm 10 links for lockfile `text`; NotOnHost when this module does not
    make it."""
    import yaml  # 15 ms: only when a pnpm tree is laid out

    try:
        lock = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        msg = f"pnpm-lock.yaml is not YAML pnpm would read ({exc})"
        raise NotOnHost(msg) from None
    if not isinstance(lock, dict) or str(lock.get("lockfileVersion")) != "9.0":
        version = lock.get("lockfileVersion") if isinstance(lock, dict) else None
        msg = f"pnpm-lock.yaml has lockfileVersion {version!r}; the host lays out 9.0 only"
        raise NotOnHost(msg)
    _only(lock, _TOP_KEYS, "pnpm-lock.yaml")
    if lock.get("settings", _SETTINGS) != _SETTINGS:
        msg = f"pnpm-lock.yaml's settings {lock['settings']} are not pnpm's defaults"
        raise NotOnHost(msg)
    importers = lock.get("importers") or {}
    if set(importers) != {"."}:
        msg = f"pnpm-lock.yaml is a workspace (importers {sorted(importers)})"
        raise NotOnHost(msg)
    importer = importers["."] or {}
    _only(importer, _IMPORTER_KEYS, "importers['.']")
    direct = {
        alias: _dep_path(alias, str(pin["version"]), "the project")
        for kind in ("dependencies", "devDependencies", "optionalDependencies")
        for alias, pin in (importer.get(kind) or {}).items()
    }
    packages = _packages(lock.get("packages") or {}, lock.get("snapshots") or {})
    for alias, dep_path in direct.items():
        if dep_path not in packages:
            msg = f"the project's dependency {alias} ({dep_path}) is not in pnpm-lock.yaml"
            raise NotOnHost(msg)
    _check_bins(packages, direct)
    return Layout(packages=packages, direct=direct, hoisted=_hoist(packages, direct))


def tarball_url(name: str, version: str) -> str:
    """The npm registry's tarball of a package: `@s/n` 1.0.0 -> .../@s/n/-/n-1.0.0.tgz."""
    return f"{REGISTRY}{name}/-/{name.rpartition('/')[2]}-{version}.tgz"


def _packages(metadata: Mapping[str, Any], snapshots: Mapping[str, Any]) -> dict[str, Package]:
    found = {}
    for dep_path in sorted(snapshots):
        snapshot = snapshots[dep_path] or {}
        if "(" in dep_path:
            msg = f"{dep_path} is a peer-suffixed snapshot"
            raise NotOnHost(msg)
        _only(snapshot, _SNAPSHOT_KEYS, dep_path)
        meta = metadata.get(dep_path)
        if not isinstance(meta, Mapping):
            msg = f"{dep_path} has a snapshot but no package entry in pnpm-lock.yaml"
            raise NotOnHost(msg)
        _only(meta, _PACKAGE_KEYS, dep_path)
        resolution = meta.get("resolution") or {}
        if set(resolution) - {"integrity", "tarball"} or "integrity" not in resolution:
            msg = f"{dep_path} is not a registry tarball with an integrity ({resolution})"
            raise NotOnHost(msg)
        name, _, version = dep_path[1:].partition("@")
        name = dep_path[0] + name
        folder = dep_path.replace("/", "+")
        if len(folder) > _MAX_FOLDER or folder != folder.lower():
            msg = f"{dep_path}: pnpm names its folder with a hash"
            raise NotOnHost(msg)
        deps = {
            alias: _dep_path(alias, str(version_), dep_path)
            for kind in ("dependencies", "optionalDependencies")
            for alias, version_ in (snapshot.get(kind) or {}).items()
        }
        found[dep_path] = Package(
            dep_path=dep_path,
            name=name,
            version=version,
            folder=folder,
            url=str(resolution.get("tarball") or tarball_url(name, version)),
            integrity=str(resolution["integrity"]),
            has_bin=bool(meta.get("hasBin")),
            deps=deps,
        )
    for dep_path in metadata:
        if dep_path not in found:
            msg = f"{dep_path} has a package entry but no snapshot in pnpm-lock.yaml"
            raise NotOnHost(msg)
    return found


def _dep_path(alias: str, version: str, owner: str) -> str:
    """The depPath a dependency's locked version names: `1.0.0` -> `alias@1.0.0`; an alias
    (`npm:other@1`) is locked as `other@1.0.0`."""
    if version.startswith(("link:", "file:", "workspace:")) or "(" in version:
        msg = f"{owner} depends on {alias} as {version} (a link, folder or peer-suffixed pin)"
        raise NotOnHost(msg)
    return version if "@" in version[1:] else f"{alias}@{version}"


def _only(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        msg = f"pnpm-lock.yaml: {where} has {', '.join(extra)}, which the host does not lay out"
        raise NotOnHost(msg)


def _check_bins(packages: Mapping[str, Package], direct: Mapping[str, str]) -> None:
    needed = {dep for pkg in packages.values() for dep in pkg.deps.values()}
    for dep_path, pkg in packages.items():
        if pkg.has_bin and (dep_path in needed or dep_path not in direct.values()):
            msg = f"{dep_path} has executables another package of the tree links (hasBin)"
            raise NotOnHost(msg)


def _walk(
    packages: Mapping[str, Package], level: list[str], depth: int, seen: set[str]
) -> Iterator[tuple[int, str]]:
    """(depth, depPath) of each package pnpm's graphWalker meets from `level` (already
    marked seen): each one's children are marked in turn, then each subtree walked."""
    steps = []
    for dep_path in level:
        yield depth, dep_path
        fresh = [c for c in dict.fromkeys(packages[dep_path].deps.values()) if c not in seen]
        seen.update(fresh)
        steps.append(fresh)
    for fresh in steps:
        yield from _walk(packages, fresh, depth + 1, seen)


def _hoist(packages: Mapping[str, Package], direct: Mapping[str, str]) -> dict[str, str]:
    roots = list(dict.fromkeys(direct.values()))
    met = sorted(_walk(packages, roots, 0, set(roots)))
    taken = {alias.lower() for alias in direct}
    hoisted: dict[str, str] = {}
    for _, dep_path in met:
        for alias, child in packages[dep_path].deps.items():
            if alias.lower() in taken:
                continue
            taken.add(alias.lower())
            hoisted[alias] = child
    return hoisted
