"""An npm tree assembled on the host (builder.kinds.npm.tree.py), from tarballs in a local
content store: what lands in the layer, what is left out, and the trees it refuses."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from builder.core.errors import BuildError
from builder.kinds.npm.lockjson import hidden_lockfile
from builder.kinds.npm.tree import NotOnHost, Project, Target, assemble_npm_tree
from builder.net import downloads

EPOCH = 1_700_000_000
FOLDER = "/opt/sandbox/tools/npm/alpha/"
TOP = FOLDER.strip("/")


def _tarball(files: Mapping[str, tuple[bytes, int]]) -> bytes:
    """A gzipped npm tarball: every file under `package/`, with the mode given."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size, info.mode, info.mtime = len(data), mode, 123
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _store(cacache: Path, data: bytes) -> str:
    """Put `data` in the content store as npm does; its integrity."""
    hexed = hashlib.sha512(data).hexdigest()
    path = cacache / "content-v2" / "sha512" / hexed[:2] / hexed[2:4] / hexed[4:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return _sri(data)


ALPHA = _tarball(
    {
        "package.json": (b'{"name": "alpha"}', 0o644),
        "cli.js": (b"#!/usr/bin/env node\r\nconsole.log(1)\r\n", 0o644),
        "lib/.gitignore": (b"*.log\n", 0o600),
        "tool.sh": (b"#!/bin/sh\n", 0o775),
    }
)
BETA = _tarball({"package.json": (b'{"name": "beta"}', 0o644), "b.js": (b"1", 0o644)})


@pytest.fixture
def cacache(tmp_path: Path) -> Path:
    return tmp_path / "_cacache"


def _packages(cacache: Path, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "path": "node_modules/alpha",
            "version": "1.0.0",
            "resolved": "https://registry.example/alpha-1.0.0.tgz",
            "integrity": _store(cacache, ALPHA),
            "bin": {"alpha": "./cli.js"},
            "dependencies": {"beta": "^2"},
            "optionalDependencies": {"alpha-darwin": "1.0.0"},
            **extra,
        },
        {
            "path": "node_modules/alpha-darwin",  # never fetched: its tarball is not stored
            "version": "1.0.0",
            "resolved": "https://registry.example/alpha-darwin-1.0.0.tgz",
            "integrity": _sri(b"not stored"),
            "optional": True,
            "os": ["darwin"],
        },
        {
            "path": "node_modules/alpha/node_modules/beta",
            "version": "2.0.0",
            "resolved": "https://registry.example/beta-2.0.0.tgz",
            "integrity": _store(cacache, BETA),
            "bin": "b.js",
        },
    ]


def _assemble(cacache: Path, packages: list[dict[str, Any]], dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    layer = assemble_npm_tree(
        project=Project.of_tools(["alpha@1"], packages),
        packages=packages,
        folder=FOLDER,
        target=Target.of("linux/amd64"),
        cacache=cacache,
        epoch=EPOCH,
        dest=dest,
    )
    assert layer.diff_id == "sha256:" + hashlib.sha256(dest.read_bytes()).hexdigest()
    return dest


def _read(layer: Path) -> tuple[list[tarfile.TarInfo], dict[str, bytes]]:
    """The layer's entries in order, and its files' bytes."""
    with tarfile.open(layer) as tar:
        members = tar.getmembers()
        files = {m.name: tar.extractfile(m).read() for m in members if m.isreg()}  # type: ignore[union-attr]
    return members, files


def test_the_layer_holds_the_tree_as_npm_lays_it_out(cacache: Path, tmp_path: Path) -> None:
    members, files = _read(_assemble(cacache, _packages(cacache), tmp_path / "out" / "layer.tar"))
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names[:4] == ["opt", "opt/sandbox", "opt/sandbox/tools", "opt/sandbox/tools/npm"]
    tree = {m.name.removeprefix(TOP + "/"): m for m in members if m.name.startswith(TOP + "/")}
    assert set(tree) == {
        "node_modules",
        "node_modules/.bin",
        "node_modules/.bin/alpha",
        "node_modules/.package-lock.json",
        "node_modules/alpha",
        "node_modules/alpha/cli.js",
        "node_modules/alpha/lib",
        "node_modules/alpha/lib/.npmignore",  # pacote renames a .gitignore
        "node_modules/alpha/node_modules",
        "node_modules/alpha/node_modules/.bin",
        "node_modules/alpha/node_modules/.bin/beta",
        "node_modules/alpha/node_modules/beta",
        "node_modules/alpha/node_modules/beta/b.js",
        "node_modules/alpha/node_modules/beta/package.json",
        "node_modules/alpha/package.json",
        "node_modules/alpha/tool.sh",
        "package-lock.json",
        "package.json",
    }
    assert tree["node_modules/.bin/alpha"].linkname == "../alpha/cli.js"
    assert tree["node_modules/alpha/node_modules/.bin/beta"].linkname == "../beta/b.js"
    modes = {name: m.mode for name, m in tree.items() if not m.issym()}
    assert modes["node_modules/alpha/cli.js"] == 0o755  # a bin: made executable
    assert modes["node_modules/alpha/node_modules/beta/b.js"] == 0o755
    assert modes["node_modules/alpha/tool.sh"] == 0o755  # executable in its tarball
    assert modes["node_modules/alpha/lib/.npmignore"] == 0o644  # owner rw, all read
    assert modes["node_modules/alpha/lib"] == 0o755
    assert all((m.uid, m.gid, m.mtime) == (0, 0, EPOCH) for m in members)
    script = files[f"{TOP}/node_modules/alpha/cli.js"]
    assert script == b"#!/usr/bin/env node\nconsole.log(1)\r\n"  # only the #! line is cut
    hidden = json.loads(files[f"{TOP}/node_modules/.package-lock.json"])
    assert set(hidden["packages"]) == {
        "node_modules/alpha",
        "node_modules/alpha/node_modules/beta",
    }


def test_same_lock_same_bytes(cacache: Path, tmp_path: Path) -> None:
    one = _assemble(cacache, _packages(cacache), tmp_path / "one" / "layer.tar")
    two = _assemble(cacache, _packages(cacache), tmp_path / "two" / "layer.tar")
    assert one.read_bytes() == two.read_bytes()


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_the_bytes_do_not_depend_on_the_umask_or_the_folder(
    cacache: Path, tmp_path: Path, umask: int
) -> None:
    """A host-laid layer depends on the lock alone: not on the client's umask, nor on where
    the tar is written."""
    expected = _assemble(cacache, _packages(cacache), tmp_path / "ref" / "layer.tar")
    old = os.umask(umask)
    try:
        other = _assemble(cacache, _packages(cacache), tmp_path / "x" / "y" / "other.tar")
    finally:
        os.umask(old)
    assert other.read_bytes() == expected.read_bytes()


def test_a_missing_tarball_is_fetched_checked_and_kept(
    cacache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packages = _packages(cacache)
    shutil.rmtree(cacache)
    served = {"alpha-1.0.0.tgz": ALPHA, "beta-2.0.0.tgz": BETA}
    fetched = []

    def fetch(url: str, *, dest_dir: Path, **_: Any) -> Path:
        fetched.append(url)
        dest_dir.mkdir(parents=True, exist_ok=True)
        data = served[url.rpartition("/")[2]]
        path = dest_dir / hashlib.sha256(data).hexdigest()  # named as downloads.fetch does
        path.write_bytes(data)
        return path

    monkeypatch.setattr(downloads, "fetch", fetch)
    _assemble(cacache, packages, tmp_path / "one" / "layer.tar")
    assert len(fetched) == 2
    _assemble(cacache, packages, tmp_path / "two" / "layer.tar")
    assert len(fetched) == 2  # the second time from the store

    served["beta-2.0.0.tgz"] = b"altered"
    shutil.rmtree(cacache)
    with pytest.raises(BuildError, match=r"alpha/node_modules/beta.*integrity"):
        _assemble(cacache, packages, tmp_path / "three" / "layer.tar")


def test_a_tree_with_install_scripts_is_refused(cacache: Path, tmp_path: Path) -> None:
    packages = _packages(cacache, hasInstallScript=True)
    with pytest.raises(NotOnHost, match="alpha has install scripts"):
        _assemble(cacache, packages, tmp_path / "layer.tar")


def test_a_package_with_a_binding_gyp_is_refused(cacache: Path, tmp_path: Path) -> None:
    packages = _packages(cacache)
    gyp = _tarball({"package.json": (b"{}", 0o644), "binding.gyp": (b"{}", 0o644)})
    packages[2]["integrity"] = _store(cacache, gyp)
    with pytest.raises(NotOnHost, match=r"alpha/node_modules/beta has a binding\.gyp"):
        _assemble(cacache, packages, tmp_path / "layer.tar")


def test_a_required_package_for_another_platform_is_an_error(cacache: Path, tmp_path: Path) -> None:
    packages = _packages(cacache)
    packages[1]["optional"] = False
    with pytest.raises(BuildError, match="alpha-darwin does not run on linux/x64"):
        _assemble(cacache, packages, tmp_path / "layer.tar")


def test_the_hidden_lockfile_orders_keys_as_npm_writes_them() -> None:
    text = hidden_lockfile(
        [
            {"path": "node_modules/a/node_modules/c", "version": "1.0.0", "bin": {"c": "c.js"}},
            {"path": "node_modules/a_b", "version": "1.0.0", "optional": True, "cpu": ["x64"]},
        ]
    )
    packages = json.loads(text)["packages"]
    # localeCompare puts "_" before "/"; the scalars and arrays before objects
    assert list(packages) == ["node_modules/a_b", "node_modules/a/node_modules/c"]
    assert list(packages["node_modules/a_b"]) == ["version", "cpu", "optional"]
    assert text.startswith('{\n  "name": "sandbox-tools",\n  "lockfileVersion": 3,')
