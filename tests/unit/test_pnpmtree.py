"""A pnpm tree assembled on the host (builder/kinds/deps/pnpmtree.py, pnpmlock.py, shims.py)
from a tiny handmade pnpm-lock.yaml and tarballs in a local content store (no network): the
isolated layout, the hoisting, the shims and pnpm's records; the bytes' independence of the
umask and the folder; and the trees it refuses."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from builder.kinds.deps.pnpmlock import read_layout
from builder.kinds.deps.pnpmtree import assemble_pnpm_tree
from builder.kinds.npm.tree import NotOnHost
from tests.unit.test_npmtree import _store, _tarball

EPOCH = 1_700_000_000
PREFIX = "/opt/sandbox/deps/web"
TOP = PREFIX.strip("/")
NM = f"{TOP}/node_modules"

APP = _tarball(
    {
        "package.json": (b'{"name": "app", "bin": {"app": "bin/app.js"}}', 0o644),
        "bin/app.js": (b"#!/usr/bin/env node\r\nrequire('lib')\r\n", 0o644),
    }
)
LIB1 = _tarball({"package.json": (b'{"name": "lib"}', 0o644), "index.js": (b"1", 0o644)})
LIB2 = _tarball({"package.json": (b'{"name": "lib"}', 0o644), "index.js": (b"2", 0o755)})
DEEP = _tarball({"package.json": (b'{"name": "@s/deep"}', 0o644), "i.js": (b"d", 0o644)})
SCRIPTED = _tarball({"package.json": (b'{"name": "lib", "scripts": {"postinstall": "x"}}', 0o644)})
PACKAGE_JSON = '{"name": "web", "dependencies": {"app": "1.0.0"}}\n'


def _lock(cacache: Path, lib1: bytes = LIB1) -> str:
    """app@1.0.0 (the project's) -> lib@1.0.0 -> @s/deep@1.0.0 -> lib@2.0.0."""
    return f"""lockfileVersion: '9.0'

settings:
  autoInstallPeers: true
  excludeLinksFromLockfile: false

importers:

  .:
    dependencies:
      app:
        specifier: 1.0.0
        version: 1.0.0

packages:

  '@s/deep@1.0.0':
    resolution: {{integrity: {_store(cacache, DEEP)}}}

  app@1.0.0:
    resolution: {{integrity: {_store(cacache, APP)}}}
    hasBin: true

  lib@1.0.0:
    resolution: {{integrity: {_store(cacache, lib1)}}}

  lib@2.0.0:
    resolution: {{integrity: {_store(cacache, LIB2)}, tarball: https://mirror.example/l.tgz}}

snapshots:

  '@s/deep@1.0.0':
    dependencies:
      lib: 2.0.0

  app@1.0.0:
    dependencies:
      lib: 1.0.0

  lib@1.0.0:
    dependencies:
      '@s/deep': 1.0.0

  lib@2.0.0: {{}}
"""


@pytest.fixture
def pnpm(tmp_path: Path) -> Path:
    """An unpacked pnpm package (its CLI script only)."""
    folder = tmp_path / "pnpm"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "pnpm.cjs").write_text("// pnpm\n")
    (folder / "bin" / "pnpm.cjs").chmod(0o755)
    (folder / "package.json").write_text('{"name": "pnpm"}')
    return folder


def _assemble(cacache: Path, pnpm: Path, lock: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    assemble_pnpm_tree(
        files={"package.json": PACKAGE_JSON, "pnpm-lock.yaml": lock},
        pnpm=pnpm,
        pnpm_bin="bin/pnpm.cjs",
        pnpm_version="10.34.9",
        prefix=PREFIX,
        cacache=cacache,
        epoch=EPOCH,
        dest=dest,
        what="deps.web",
    )
    return dest


def _members(layer: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(layer) as tar:
        return {m.name: m for m in tar.getmembers()}


def _text(layer: Path, name: str) -> str:
    with tarfile.open(layer) as tar:
        data = tar.extractfile(name)
        assert data is not None
        return data.read().decode()


def test_the_layer_holds_pnpms_isolated_layout(tmp_path: Path, pnpm: Path) -> None:
    cacache = tmp_path / "cacache"
    layer = _assemble(cacache, pnpm, _lock(cacache), tmp_path / "out" / "layer.tar")
    found = _members(layer)
    links = {n: m.linkname for n, m in found.items() if m.issym()}
    assert links == {
        f"{NM}/app": ".pnpm/app@1.0.0/node_modules/app",
        f"{NM}/.pnpm/app@1.0.0/node_modules/lib": "../../lib@1.0.0/node_modules/lib",
        f"{NM}/.pnpm/lib@1.0.0/node_modules/@s/deep": "../../../@s+deep@1.0.0/node_modules/@s/deep",
        f"{NM}/.pnpm/@s+deep@1.0.0/node_modules/lib": "../../lib@2.0.0/node_modules/lib",
        # hoisted: the shallowest lib wins, @s/deep too
        f"{NM}/.pnpm/node_modules/lib": "../lib@1.0.0/node_modules/lib",
        f"{NM}/.pnpm/node_modules/@s/deep": "../../@s+deep@1.0.0/node_modules/@s/deep",
    }
    script = f"{NM}/.pnpm/app@1.0.0/node_modules/app/bin/app.js"
    assert found[script].mode == 0o755  # a command's script made executable ...
    assert _text(layer, script) == "#!/usr/bin/env node\nrequire('lib')\r\n"  # ... LF #!
    assert found[f"{NM}/.pnpm/lib@2.0.0/node_modules/lib/index.js"].mode == 0o755
    assert found[f"{NM}/.pnpm/lib@1.0.0/node_modules/lib/index.js"].mode == 0o644
    shim = _text(layer, f"{NM}/.bin/app")
    assert found[f"{NM}/.bin/app"].mode == 0o755
    store = f"/{NM}/.pnpm"
    node_path = (
        f"{store}/app@1.0.0/node_modules/app/node_modules:{store}/app@1.0.0/node_modules:"
        f"{store}/node_modules"
    )
    assert f'  export NODE_PATH="{node_path}"\n' in shim
    assert shim.endswith(
        'if [ -x "$basedir/node" ]; then\n'
        '  exec "$basedir/node"  "$basedir/../app/bin/app.js" "$@"\n'
        "else\n"
        '  exec node  "$basedir/../app/bin/app.js" "$@"\n'
        "fi\n"
    )
    modules = json.loads(_text(layer, f"{NM}/.modules.yaml"))
    assert modules["hoistedDependencies"] == {
        "lib@1.0.0": {"lib": "private"},
        "@s/deep@1.0.0": {"@s/deep": "private"},
    }
    assert modules["prunedAt"] == "Tue, 14 Nov 2023 22:13:20 GMT"  # the epoch
    state = json.loads(_text(layer, f"{NM}/.pnpm-workspace-state-v1.json"))
    assert state["lastValidatedTimestamp"] == EPOCH * 1000
    assert _text(layer, f"{NM}/.pnpm/lock.yaml") == _text(layer, f"{TOP}/pnpm-lock.yaml")
    assert (
        _text(layer, f"{TOP}/bin/pnpm") == f'#!/bin/sh\nexec node {PREFIX}/pnpm/bin/pnpm.cjs "$@"\n'
    )
    assert found[f"{TOP}/pnpm/bin/pnpm.cjs"].mode == 0o755
    assert {(m.uid, m.gid, m.mtime) for m in found.values()} == {(0, 0, EPOCH)}
    assert list(found) == sorted(found)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_the_bytes_do_not_depend_on_the_umask_or_the_folder(
    tmp_path: Path, pnpm: Path, umask: int
) -> None:
    """Same lock, same bytes: under any umask, the work in any folder."""
    cacache = tmp_path / "cacache"
    lock = _lock(cacache)
    first = _assemble(cacache, pnpm, lock, tmp_path / "a" / "layer.tar").read_bytes()
    old = os.umask(umask)
    try:
        again = _assemble(cacache, pnpm, lock, tmp_path / "b" / "c" / "layer.tar").read_bytes()
    finally:
        os.umask(old)
    assert again == first


def test_a_package_with_install_scripts_is_refused(tmp_path: Path, pnpm: Path) -> None:
    cacache = tmp_path / "cacache"
    with pytest.raises(NotOnHost, match=r"lib@1\.0\.0/node_modules/lib has install scripts"):
        _assemble(cacache, pnpm, _lock(cacache, SCRIPTED), tmp_path / "l.tar")


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        (("lockfileVersion: '9.0'", "lockfileVersion: '6.0'"), "lockfileVersion"),
        (("  lib@2.0.0: {}", "  lib@2.0.0(peer@1.0.0): {}"), "peer-suffixed"),
        (("    version: 1.0.0", "    version: link:../app"), "a link"),
        (("autoInstallPeers: true", "autoInstallPeers: false"), "settings"),
        (("snapshots:", "patchedDependencies: {}\n\nsnapshots:"), "patchedDependencies"),
        (("  lib@1.0.0:\n    res", "  lib@1.0.0:\n    hasBin: true\n    res"), "hasBin"),
    ],
)
def test_layouts_the_host_does_not_make_are_refused(
    tmp_path: Path, change: tuple[str, str], refused: str
) -> None:
    lock = _lock(tmp_path / "cacache")
    assert change[0] in lock
    with pytest.raises(NotOnHost, match=refused):
        read_layout(lock.replace(*change, 1))
