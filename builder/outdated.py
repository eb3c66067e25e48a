"""`sandbox outdated`: for every pin of sandbox.lock, what the spec allows now and what exists.

Each pin is compared against the same sources `sandbox lock` resolves from:
- Debian packages (the system closure and a bootstrap base's package set): `apt-cache madison`
  in a container of the locked base, after `apt-get update` with the base's own sources (the
  suite, -updates and -security). A newer version the spec allows that `<suite>-security`
  carries makes the pin a security update.
- a base image reference: the digest its tag points to now (registry), or the local image ID.
- runtimes: the publisher's release index (the request picks `allowed`; the newest stable
  release overall is `latest`).
- pip tools and their closures: PyPI's JSON API; npm tools and their closures: the npm
  registry's metadata (`allowed` for the tools themselves: their spec's range).
- binaries: their version is fixed in sandbox.toml and has no index to ask; listed with --all.

Everything that reaches the network is behind `Sources`, so the comparison itself is tested
with recording fakes.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from builder import patterns
from builder.cache import Cache
from builder.engine import Engine
from builder.errors import ResolutionError
from builder.lockfile import Lock, NodeLock
from builder.managers import npm_dependency
from builder.progress import Progress
from builder.resolve.apt import system_request
from builder.resolve.madison import madison, parse_madison
from builder.resolve.versions import (
    debian_compare,
    debian_newest,
    npm_max_satisfying,
    pypi_allowed,
    pypi_newer,
    pypi_newest,
    semver_newer,
)
from builder.spec import RuntimeSpec, Spec

KINDS = frozenset({"base", "deb", "runtime", "pypi", "npm", "bin"})
PYPI = "https://pypi.org/pypi/{name}/json"
NPM = "https://registry.npmjs.org/{name}"
_FETCHES = 8  # index documents fetched at once


@dataclass(frozen=True, kw_only=True)
class Pin:
    """One pin of the lock next to what the spec allows now and the newest there is."""

    node: str
    package: str
    kind: str  # deb | pypi | npm | runtime | base | bin
    locked: str
    allowed: str  # "" when the spec puts no constraint of its own on it (a closure member)
    latest: str
    security: bool = False
    update: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "package": self.package,
            "kind": self.kind,
            "locked": self.locked,
            "allowed": self.allowed,
            "latest": self.latest,
            "security": self.security,
            "update": self.update,
        }


@dataclass(frozen=True, kw_only=True)
class Sources:
    """Where newer versions are read from: live ones for the CLI, recording fakes in tests."""

    madison: Callable[[list[str]], str]  # package names -> `apt-cache madison` output
    get_json: Callable[[str], Any]  # URL -> parsed JSON document
    image_pin: Callable[[str], str]  # base image reference -> what lock would pin it to now
    runtime: Callable[[RuntimeSpec], tuple[str, str]]  # -> (allowed, latest) versions


def gather(
    *,
    spec: Spec,
    nodes: Mapping[str, NodeLock],
    sources: Sources,
    kinds: Collection[str] = KINDS,
) -> list[Pin]:
    """Every pin of `nodes` of the given kinds, sorted by node order then package."""
    pins: list[Pin] = []
    if "base" in kinds:
        pins.extend(_base_image(nodes, sources))
    if "deb" in kinds:
        pins.extend(_debian(spec, nodes, sources))
    if "runtime" in kinds:
        pins.extend(_runtimes(spec, nodes, sources))
    if "pypi" in kinds and "tools.pip" in nodes:
        pins.extend(_pip(nodes["tools.pip"], sources))
    if "npm" in kinds and "tools.npm" in nodes:
        pins.extend(_npm(nodes["tools.npm"], sources))
    if "bin" in kinds:
        pins.extend(_bins(nodes))
    order = {name: i for i, name in enumerate(nodes)}
    return sorted(pins, key=lambda p: (order.get(p.node, len(order)), p.package, p.locked))


def security_updates(pins: Iterable[Pin]) -> list[str]:
    """The names of the Debian packages with a pending security update, sorted."""
    return sorted({p.package for p in pins if p.kind == "deb" and p.security and p.update})


# -- Debian ------------------------------------------------------------------------------------


def _debian(spec: Spec, nodes: Mapping[str, NodeLock], sources: Sources) -> list[Pin]:
    system = nodes.get("system")
    in_system = {p["name"]: p["version"] for p in system.inputs["packages"]} if system else {}
    base = nodes["base"].inputs if "base" in nodes else {}
    # A base package the system layer upgraded is that pin, not the base's.
    locked = [
        ("base", p["name"], p["version"])
        for p in base.get("packages", [])
        if p["name"] not in in_system
    ]
    locked += [("system", name, version) for name, version in sorted(in_system.items())]
    if not locked:
        return []
    offers = parse_madison(sources.madison(sorted({name for _, name, _ in locked})))
    constraints = dict(r.split("=", 1) for r in system_request(spec) if "=" in r)
    pins = []
    for node, name, version in locked:
        offered = offers.get(name, [])
        latest = debian_newest(o.version for o in offered)
        pattern = constraints.get(name)
        allowed = debian_newest(
            o.version for o in offered if pattern is None or fnmatch.fnmatchcase(o.version, pattern)
        )
        newer = [
            o
            for o in offered
            if debian_compare(o.version, version) > 0
            and allowed
            and debian_compare(o.version, allowed) <= 0
        ]
        pins.append(
            Pin(
                node=node,
                package=name,
                kind="deb",
                locked=version,
                allowed=allowed,
                latest=latest,
                security=any(o.security for o in newer),
                update=bool(latest) and debian_compare(latest, version) > 0,
            )
        )
    return pins


def _base_image(nodes: Mapping[str, NodeLock], sources: Sources) -> list[Pin]:
    base = nodes.get("base")
    if base is None or "pinned" not in base.inputs:
        return []
    ref, pinned = str(base.inputs["image"]), str(base.inputs["pinned"])
    now = pinned if "@sha256:" in ref else sources.image_pin(ref)
    return [
        Pin(
            node="base",
            package=ref,
            kind="base",
            locked=pinned,
            allowed=now,
            latest=now,
            update=now != pinned,
        )
    ]


# -- runtimes and binaries ---------------------------------------------------------------------


def _runtimes(spec: Spec, nodes: Mapping[str, NodeLock], sources: Sources) -> list[Pin]:
    pins = []
    for runtime in spec.runtimes:
        node = nodes.get(f"runtime.{runtime.name}")
        if node is None:  # provider "apt": its packages are system pins
            continue
        locked = str(node.inputs["version"])
        allowed, latest = sources.runtime(runtime)
        pins.append(
            Pin(
                node=node.name,
                package=runtime.name,
                kind="runtime",
                locked=locked,
                allowed=allowed,
                latest=latest,
                update=_dotted_newer(latest, locked) or _dotted_newer(allowed, locked),
            )
        )
    return pins


def _dotted_newer(candidate: str, locked: str) -> bool:
    def key(version: str) -> tuple[int, ...]:
        return tuple(int(p) if p.isdigit() else -1 for p in version.split("."))

    return bool(candidate) and key(candidate) > key(locked)


def _bins(nodes: Mapping[str, NodeLock]) -> list[Pin]:
    pins = []
    for name, node in nodes.items():
        if not name.startswith("tools.bin."):
            continue
        version = str(node.inputs.get("version") or node.inputs["requested"]["version"])
        tool = name.removeprefix("tools.bin.")
        pins.append(
            Pin(
                node=name, package=tool, kind="bin", locked=version, allowed=version, latest=version
            )
        )
    return pins


# -- PyPI and npm ------------------------------------------------------------------------------


def _fetch_all(urls: Iterable[str], sources: Sources) -> dict[str, Any]:
    todo = sorted(set(urls))
    with ThreadPoolExecutor(max_workers=_FETCHES) as pool:
        return dict(zip(todo, pool.map(sources.get_json, todo), strict=True))


def _pip(node: NodeLock, sources: Sources) -> list[Pin]:
    tools: Mapping[str, Any] = node.inputs["tools"]
    names = {p["name"] for t in tools.values() for p in t["packages"]}
    docs = _fetch_all((PYPI.format(name=n) for n in names), sources)
    pins: dict[tuple[str, str], Pin] = {}
    for tool, entry in sorted(tools.items()):
        requirement = str(entry["requirement"])
        for package in entry["packages"]:
            name, version = package["name"], package["version"]
            releases = pypi_releases(docs[PYPI.format(name=name)])
            own = name == patterns.pip_name(requirement) or name == tool
            allowed = pypi_allowed(requirement, releases) if own else ""
            latest = pypi_newest(releases)
            pin = Pin(
                node=node.name,
                package=name,
                kind="pypi",
                locked=version,
                allowed=allowed,
                latest=latest,
                update=pypi_newer(latest, version) or pypi_newer(allowed, version),
            )
            if own or (name, version) not in pins:
                pins[(name, version)] = pin
    return list(pins.values())


def pypi_releases(doc: Any) -> list[str]:
    """The versions of a PyPI JSON document that have files, not all of them yanked."""
    releases: Mapping[str, list[Mapping[str, Any]]] = doc.get("releases", {})
    return [v for v, files in releases.items() if files and not all(f.get("yanked") for f in files)]


def _npm(node: NodeLock, sources: Sources) -> list[Pin]:
    ranges = dict(npm_dependency(s) for s in node.inputs["tools"])
    installed: dict[tuple[str, str], bool] = {}
    for package in node.inputs["packages"]:
        if "version" not in package or package.get("link"):
            continue
        path = str(package["path"])
        name = str(package.get("name") or path.rsplit("node_modules/", 1)[-1])
        top = path == f"node_modules/{name}" and name in ranges
        key = (name, str(package["version"]))
        installed[key] = installed.get(key, False) or top
    docs = _fetch_all((npm_url(name) for name, _ in installed), sources)
    pins = []
    for (name, version), top in sorted(installed.items()):
        doc = docs[npm_url(name)]
        latest = str(doc.get("dist-tags", {}).get("latest", ""))
        allowed = npm_allowed(doc, ranges[name]) if top else ""
        pins.append(
            Pin(
                node=node.name,
                package=name,
                kind="npm",
                locked=version,
                allowed=allowed,
                latest=latest,
                update=semver_newer(latest, version) or semver_newer(allowed, version),
            )
        )
    return pins


def npm_url(name: str) -> str:
    return NPM.format(name=quote(name, safe="@"))


def npm_allowed(doc: Any, spec_range: str) -> str:
    """What npm installs for `spec_range`: the `latest` tag when it fits, else the newest fit."""
    latest = str(doc.get("dist-tags", {}).get("latest", ""))
    try:
        if latest and npm_max_satisfying([latest], spec_range) == latest:
            return latest
        return npm_max_satisfying(doc.get("versions", {}), spec_range)
    except ValueError:
        return ""


# -- rendering ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Report:
    pins: list[Pin] = field(default_factory=list)

    @property
    def updates(self) -> list[Pin]:
        return [p for p in self.pins if p.update]

    @property
    def security(self) -> list[Pin]:
        return [p for p in self.updates if p.security]

    def to_json(self, *, every: bool) -> dict[str, Any]:
        shown = self.pins if every else self.updates
        return {"updates": [p.to_json() for p in shown], "security": len(self.security)}

    def table(self, *, every: bool) -> str:
        shown = self.pins if every else self.updates
        header = ("NODE", "PACKAGE", "LOCKED", "ALLOWED", "LATEST", "SECURITY")
        rows = [header] + [
            (
                p.node,
                p.package,
                p.locked,
                p.allowed or "-",
                p.latest or "-",
                "security" if p.security and p.update else "",
            )
            for p in shown
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        return "\n".join(lines) + "\n" if shown else ""

    def summary(self) -> str:
        updates, security = len(self.updates), len(self.security)
        if not updates:
            return f"all {len(self.pins)} pins are current"
        note = f", {security} of them security updates" if security else ""
        hint = " (`sandbox lock --update --security` takes those)" if security else ""
        return f"{updates} of {len(self.pins)} pins have updates{note}{hint}"


# -- the live sources --------------------------------------------------------------------------


def live_sources(
    *,
    spec: Spec,
    nodes: Mapping[str, NodeLock],
    cache: Cache,
    engine: Callable[[], Engine],
    progress: Progress,
    platform: str,
) -> Sources:
    """The sources `sandbox lock` uses, reached from this machine."""
    from builder import downloads
    from builder.resolve.base import resolve_image

    def apt(names: list[str]) -> str:
        progress.say(f"  listing   {len(names)} Debian packages (apt-cache madison) ...")
        image = base_stage(
            nodes,
            cache=cache,
            engine=engine,
            progress=progress,
            platform=platform,
            project_dir=spec.project_dir,
        )
        return madison(names, engine=engine(), image=image, log_dir=cache.root / "logs")

    def get_json(url: str) -> Any:
        return downloads.get_json(url, what=url, error=ResolutionError)

    def image_pin(ref: str) -> str:
        return str(resolve_image(ref, platform=platform, engine=engine())["pinned"])

    def runtime(runtime: RuntimeSpec) -> tuple[str, str]:
        from builder.resolve.listing import runtime_versions

        return runtime_versions(runtime, platform=platform)

    return Sources(madison=apt, get_json=get_json, image_pin=image_pin, runtime=runtime)


def base_stage(
    nodes: Mapping[str, NodeLock],
    *,
    cache: Cache,
    engine: Callable[[], Engine],
    progress: Progress,
    platform: str,
    project_dir: Path,
) -> str:
    """The image of the locked base node, built (or taken from the cache) as lock does."""
    from builder.execute import Executor
    from builder.plan import make_plan

    base = {"base": nodes["base"]}
    executor = Executor(
        nodes=base,
        cache=cache,
        engine=engine,
        platform=platform,
        epoch=int(nodes["base"].inputs.get("epoch", 0)),
        progress=progress,
        project_dir=project_dir,
    )
    executor.run(make_plan(base, cache.entry), jobs=1)
    return executor.stage(["base"])


# -- the entry points --------------------------------------------------------------------------


def outdated_project(
    *,
    spec: Spec,
    lock: Lock,
    cache: Cache,
    engine: Callable[[], Engine],
    progress: Progress,
    kinds: Collection[str] = KINDS,
) -> Report:
    """Every pin of this machine's platform in `lock`, next to what its sources offer now."""
    from builder.platforms import host_platform

    platform = host_platform()
    nodes = lock.nodes(platform)
    sources = live_sources(
        spec=spec, nodes=nodes, cache=cache, engine=engine, progress=progress, platform=platform
    )
    return Report(pins=gather(spec=spec, nodes=nodes, sources=sources, kinds=kinds))


def pending_security(
    *, spec: Spec, lock: Lock, cache: Cache, engine: Callable[[], Engine], progress: Progress
) -> list[str]:
    """The Debian packages of `lock` with a security update pending (for `lock --security`)."""
    report = outdated_project(
        spec=spec, lock=lock, cache=cache, engine=engine, progress=progress, kinds={"deb"}
    )
    return security_updates(report.pins)
