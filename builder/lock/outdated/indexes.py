"""The pins of a lock that release indexes know, compared with what those offer now: runtimes
(their publisher's index), pip tools and their closures (PyPI's JSON API), npm tools and their
closures (the npm registry), and binaries (fixed in sandbox.toml, no index to ask).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from builder.core import patterns
from builder.lock.outdated.report import Pin
from builder.lock.outdated.sources import Sources
from builder.model.inputs import RuntimeInputs
from builder.model.spec import Spec
from builder.model.toolinputs import BinToolInputs, NpmToolsInputs, PipToolsInputs
from builder.resolve.managers import npm_dependency
from builder.resolve.versions import (
    npm_max_satisfying,
    pypi_allowed,
    pypi_newer,
    pypi_newest,
    semver_newer,
)

PYPI = "https://pypi.org/pypi/{name}/json"
NPM = "https://registry.npmjs.org/{name}"
_FETCHES = 8  # index documents fetched at once


def runtime_pins(spec: Spec, name: str, inputs: RuntimeInputs, sources: Sources) -> list[Pin]:
    """A runtime's pin (one `provider = "apt"` has none: its packages are system pins)."""
    runtime = next((r for r in spec.runtimes if r.name == inputs.runtime), None)
    if runtime is None:
        return []
    allowed, latest = sources.runtime(runtime)
    return [
        Pin(
            node=name,
            package=runtime.name,
            kind="runtime",
            locked=inputs.version,
            allowed=allowed,
            latest=latest,
            update=_dotted_newer(latest, inputs.version) or _dotted_newer(allowed, inputs.version),
        )
    ]


def _dotted_newer(candidate: str, locked: str) -> bool:
    def key(version: str) -> tuple[int, ...]:
        return tuple(int(p) if p.isdigit() else -1 for p in version.split("."))

    return bool(candidate) and key(candidate) > key(locked)


def bin_pin(name: str, inputs: BinToolInputs) -> Pin:
    """A binary's pin: fixed in sandbox.toml, no index to ask."""
    version = inputs.version or inputs.requested.version
    return Pin(
        node=name, package=inputs.name, kind="bin", locked=version, allowed=version, latest=version
    )


def _fetch_all(urls: Iterable[str], sources: Sources) -> dict[str, Any]:
    todo = sorted(set(urls))
    with ThreadPoolExecutor(max_workers=_FETCHES) as pool:
        return dict(zip(todo, pool.map(sources.get_json, todo), strict=True))


def pip_pins(name: str, inputs: PipToolsInputs, sources: Sources) -> list[Pin]:
    tools = inputs.tools
    names = {p.name for t in tools.values() for p in t.packages}
    docs = _fetch_all((PYPI.format(name=n) for n in names), sources)
    pins: dict[tuple[str, str], Pin] = {}
    for tool, entry in sorted(tools.items()):
        requirement = entry.requirement
        for package in entry.packages:
            name, version = package.name, package.version
            releases = pypi_releases(docs[PYPI.format(name=name)])
            own = name == patterns.pip_name(requirement) or name == tool
            allowed = pypi_allowed(requirement, releases) if own else ""
            latest = pypi_newest(releases)
            pin = Pin(
                node=name,
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


def npm_pins(name: str, inputs: NpmToolsInputs, sources: Sources) -> list[Pin]:
    npm = inputs
    ranges = dict(npm_dependency(s) for s in npm.tools)
    installed: dict[tuple[str, str], bool] = {}
    for package in npm.packages:
        if package.version is None or package.fields.get("link"):
            continue
        path = package.path
        name = str(package.fields.get("name") or path.rsplit("node_modules/", 1)[-1])
        top = path == f"node_modules/{name}" and name in ranges
        key = (name, package.version)
        installed[key] = installed.get(key, False) or top
    docs = _fetch_all((npm_url(name) for name, _ in installed), sources)
    pins = []
    for (name, version), top in sorted(installed.items()):
        doc = docs[npm_url(name)]
        latest = str(doc.get("dist-tags", {}).get("latest", ""))
        allowed = npm_allowed(doc, ranges[name]) if top else ""
        pins.append(
            Pin(
                node=name,
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
