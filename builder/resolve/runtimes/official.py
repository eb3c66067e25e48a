"""The publishers' own release archives: nodejs.org, go.dev, python-build-standalone,
Adoptium (Temurin) and static.rust-lang.org, or a mirror laid out like them (see __init__)."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from builder.core.errors import BuildError, ResolutionError
from builder.core.unpack import link_stays_inside, unpack, walk
from builder.model.inputs import RuntimeInputs
from builder.net.downloads import get_json, get_text
from builder.resolve.runtimes.releases import Query, Release, listed


def node_official(q: Query) -> Release:
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
        sha256=listed(get_text(sums, what=q.name), f"{stem}.tar.xz", sums, q),
        format="tar.xz",
        root=stem,
    )


def go_official(q: Query) -> Release:
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


def python_official(q: Query) -> Release:
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
        sha256=listed(get_text(sums, what=q.name), filename, sums, q),
        format="tar.gz",
        root="python",
    )


def java_official(q: Query) -> Release:
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


def rust_official(q: Query) -> Release:
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


def rust_components(archive: Path, prefix: Path, inputs: RuntimeInputs) -> None:
    """Do what the tarball's install.sh does: merge each listed component into the prefix."""
    stage = prefix / ".dist"
    unpack(archive, stage, fmt=inputs.format, root=inputs.root)
    listing = stage / "components"
    if not listing.is_file():
        msg = f"runtime rust: {inputs.url} has no `components` list; is it a rust dist tarball?"
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
