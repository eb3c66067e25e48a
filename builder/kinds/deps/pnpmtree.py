"""A pnpm `install` tree assembled on the host: the layer `pnpm install --frozen-lockfile`
makes in a container (deps/recipe.py), written straight from the locked tarballs.

Under the prefix P: P/pnpm (the locked pnpm tarball's `package/` folder, checked against its
sha256) and P/bin/pnpm (the wrapper the recipe writes), the project's package.json and
pnpm-lock.yaml, and P/node_modules as pnpm 10 links it (`pnpmlock.read_layout`): each package's
files at `.pnpm/<folder>/node_modules/<name>` (its tarball's, first path part dropped, 644 or
755 as the tarball marks them, folders 755, only folders that hold files, as pnpm's store
keeps files only), the symlinks, the command shims of the project's own dependencies in
`node_modules/.bin` (`shims.py`, the target made 755), and pnpm's own records:
`.modules.yaml`, `.pnpm/lock.yaml` (the lockfile as the project holds it) and
`.pnpm-workspace-state-v1.json`, their times the lock's epoch as the recipe pins them.

Tarballs come from npm's content store in the download cache by integrity (`npm/fetch.py`),
so pnpm's and npm's trees share one download each. A package with install scripts
(`preinstall`, `install`, `postinstall` in its package.json) or a binding.gyp, or executables
named in `directories.bin`, is refused with `NotOnHost`: the container recipe runs pnpm.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from builder.core.inflate import read_tarball
from builder.kinds.deps.pnpmlock import Layout, Package, read_layout
from builder.kinds.deps.shims import command_shim, package_bins
from builder.kinds.npm import entries as layer
from builder.kinds.npm import fetch as npmfetch
from builder.kinds.npm.entries import EXECUTABLE, Entry
from builder.kinds.npm.tree import NotOnHost
from builder.store.layers import LayerFile

STORE_DIR = "/tmp/pnpm-store/v10"  # where the recipe's pnpm kept its store; .modules.yaml says so
_SCRIPTS = ("preinstall", "install", "postinstall")


def assemble_pnpm_tree(
    *,
    files: Mapping[str, str],
    pnpm: Path,
    pnpm_bin: str,
    pnpm_version: str,
    prefix: str,
    cacache: Path,
    epoch: int,
    dest: Path,
    what: str,
) -> LayerFile:
    """Write the layer of the pnpm project `files` (package.json and pnpm-lock.yaml by
    name, as locked) installed at `prefix` to `dest`. `pnpm` is the unpacked pnpm package."""
    if not pnpm_version.startswith("10."):
        msg = f"pnpm {pnpm_version}: the host lays out what pnpm 10 writes"
        raise NotOnHost(msg)
    plan = read_layout(files["pnpm-lock.yaml"])
    if "pnpm" in json.loads(files["package.json"]):
        msg = "package.json has pnpm settings (its `pnpm` field)"
        raise NotOnHost(msg)
    pins = [
        {"path": p.dep_path, "resolved": p.url, "integrity": p.integrity}
        for p in plan.packages.values()
    ]
    tarballs = npmfetch.fetch_all(pins, cacache, what=what)
    top = prefix.strip("/")
    modules = f"{top}/node_modules"
    entries: dict[str, Entry] = {}
    with tempfile.TemporaryFile(dir=dest.parent) as spool:
        manifests = {
            dep_path: _extract(tarballs[dep_path], f"{modules}/.pnpm/{_home(pkg)}", entries, spool)
            for dep_path, pkg in plan.packages.items()
        }
        _links(plan, modules, entries)
        for alias, dep_path in plan.direct.items():
            home = f"{modules}/.pnpm/{_home(plan.packages[dep_path])}"
            for name, script in package_bins(manifests[dep_path], plan.packages[dep_path]):
                shim = command_shim(
                    target=f"{modules}/{alias}/{script}",
                    real=f"{home}/{script}",
                    shim=f"{modules}/.bin/{name}",
                    content=layer.read(spool, entries[f"{home}/{script}"].data),
                    extra=f"/{modules}/.pnpm/node_modules",
                )
                entries[f"{modules}/.bin/{name}"] = layer.file_entry(spool, shim, EXECUTABLE)
                found = entries[f"{home}/{script}"]
                entries[f"{home}/{script}"] = Entry(
                    kind=tarfile.REGTYPE, mode=EXECUTABLE, data=_unix_hashbang(found, spool)
                )
        texts = {
            f"{top}/package.json": files["package.json"],
            f"{top}/pnpm-lock.yaml": files["pnpm-lock.yaml"],
            f"{top}/bin/pnpm": f'#!/bin/sh\nexec node {prefix}/pnpm/{pnpm_bin} "$@"\n',
            f"{modules}/.pnpm/lock.yaml": files["pnpm-lock.yaml"],
            f"{modules}/.modules.yaml": _modules_yaml(plan, pnpm_version, epoch),
            f"{modules}/.pnpm-workspace-state-v1.json": _workspace_state(epoch),
        }
        for name, text in texts.items():
            mode = EXECUTABLE if name.endswith("/bin/pnpm") else layer.FILE
            entries[name] = layer.file_entry(spool, text.encode(), mode)
        _copy_tree(pnpm, f"{top}/pnpm", entries, spool)
        layer.add_folders(entries)
        return layer.write(entries, spool, dest, epoch)


def _home(pkg: Package) -> str:
    return f"{pkg.folder}/node_modules/{pkg.name}"


def _extract(tarball: Path, at: str, entries: dict[str, Entry], spool: IO[bytes]) -> dict[str, Any]:
    """Put one package's files into `entries` under `at`; its package.json, read. Refuses
    a package that needs code run."""
    manifest: dict[str, Any] = {}
    with read_tarball(tarball) as tar:
        for member in tar:
            parts = member.name.replace("\\", "/").split("/")[1:]
            name = "/".join(p for p in parts if p not in ("", "."))
            if not name or ".." in parts or not member.isreg():
                continue
            data = tar.extractfile(member)
            content = data.read() if data is not None else b""
            if name == "package.json":
                manifest = json.loads(content)
            mode = EXECUTABLE if member.mode & 0o111 else layer.FILE
            entries[f"{at}/{name}"] = layer.file_entry(spool, content, mode)
    where = at.rpartition("/.pnpm/")[2]
    scripts = manifest.get("scripts") or {}
    ran = [s for s in _SCRIPTS if s in scripts]
    if ran:
        msg = f"{where} has install scripts ({', '.join(ran)})"
        raise NotOnHost(msg)
    if f"{at}/binding.gyp" in entries:
        msg = f"{where} has a binding.gyp (pnpm builds it with node-gyp)"
        raise NotOnHost(msg)
    return manifest


def _links(plan: Layout, modules: str, entries: dict[str, Entry]) -> None:
    """The symlinks pnpm makes: each package's dependencies beside it, the project's own
    dependencies in node_modules, the hoisted ones in .pnpm/node_modules."""
    store = f"{modules}/.pnpm"

    def link(at: str, dep_path: str) -> None:
        target = f"{store}/{_home(plan.packages[dep_path])}"
        entries[at] = layer.link_entry(posixpath.relpath(target, posixpath.dirname(at)))

    for pkg in plan.packages.values():
        for alias, dep_path in pkg.deps.items():
            link(f"{store}/{pkg.folder}/node_modules/{alias}", dep_path)
    for alias, dep_path in plan.direct.items():
        link(f"{modules}/{alias}", dep_path)
    for alias, dep_path in plan.hoisted.items():
        link(f"{store}/node_modules/{alias}", dep_path)


def _unix_hashbang(entry: Entry, spool: IO[bytes]) -> tuple[int, int]:
    """bin-links' fixBin: a `#!` first line ending CRLF ends LF."""
    content = layer.read(spool, entry.data)
    first, newline, rest = content.partition(b"\n")
    if not (content.startswith(b"#!") and newline and first.endswith(b"\r")):
        return entry.data
    return layer.put(spool, first[:-1] + b"\n" + rest)


def _copy_tree(source: Path, at: str, entries: dict[str, Entry], spool: IO[bytes]) -> None:
    """`cp -R` of an unpacked folder (files 644 or 755, folders 755) to `at`."""
    for path in sorted(source.rglob("*")):
        name = f"{at}/{path.relative_to(source).as_posix()}"
        if path.is_symlink():
            entries[name] = layer.link_entry(str(path.readlink()))
        elif path.is_dir():
            entries[name] = Entry(kind=tarfile.DIRTYPE)
        else:
            mode = EXECUTABLE if path.stat().st_mode & 0o111 else layer.FILE
            entries[name] = layer.file_entry(spool, path.read_bytes(), mode)


def _js_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _modules_yaml(plan: Layout, version: str, epoch: int) -> str:
    """node_modules/.modules.yaml as pnpm 10 writes it (JSON, keys in its order)."""
    hoisted: dict[str, dict[str, str]] = {}
    for alias, dep_path in plan.hoisted.items():
        hoisted.setdefault(dep_path, {})[alias] = "private"
    pruned = datetime.fromtimestamp(epoch, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    modules = {
        "hoistedDependencies": hoisted,
        "hoistPattern": ["*"],
        "included": {"dependencies": True, "devDependencies": True, "optionalDependencies": True},
        "injectedDeps": {},
        "layoutVersion": 5,
        "nodeLinker": "isolated",
        "packageManager": f"pnpm@{version}",
        "pendingBuilds": [],
        "publicHoistPattern": [],
        "prunedAt": pruned,
        "registries": {"default": "https://registry.npmjs.org/", "@jsr": "https://npm.jsr.io/"},
        "skipped": [],
        "storeDir": STORE_DIR,
        "virtualStoreDir": ".pnpm",
        "virtualStoreDirMaxLength": 120,
    }
    return _js_json(modules)


def _workspace_state(epoch: int) -> str:
    """node_modules/.pnpm-workspace-state-v1.json as pnpm 10 writes it for one project with
    default settings, its timestamp the lock's epoch (in ms)."""
    state = {
        "lastValidatedTimestamp": epoch * 1000,
        "projects": {},
        "pnpmfiles": [],
        "settings": {
            "autoInstallPeers": True,
            "dedupeDirectDeps": False,
            "dedupeInjectedDeps": True,
            "dedupePeerDependents": True,
            "dedupePeers": False,
            "dev": True,
            "excludeLinksFromLockfile": False,
            "hoistPattern": ["*"],
            "hoistWorkspacePackages": True,
            "injectWorkspacePackages": False,
            "linkWorkspacePackages": False,
            "nodeLinker": "isolated",
            "optional": True,
            "peersSuffixMaxLength": 1000,
            "preferWorkspacePackages": False,
            "production": True,
            "publicHoistPattern": [],
        },
        "filteredInstall": False,
    }
    return _js_json(state) + "\n"
