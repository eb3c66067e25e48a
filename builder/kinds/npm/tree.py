"""An npm tree assembled on the host: the locked packages written straight into a layer tar.

What `npm ci` does for a tree whose packages run no code, done without a container or node:
each package's tarball comes from npm's own content store (fetched by `resolved` and checked
against `integrity` when missing), and its files are written at the package's lockfile path
(`node_modules/a/node_modules/b`) under the tree's folder, as npm's pacote extracts them: the
tarball's first path component dropped, links and `..` paths skipped, `.gitignore` renamed
`.npmignore`, files 644 (755 when the tarball made them executable), folders 755. Packages
whose `os`/`cpu`/`libc` rule out the target are left out when optional, as npm does, and so
are the optional packages only they needed. Each package's `bin` is linked as npm's bin-links
does: `<its node_modules>/.bin/<name>` -> the script, the script made 755 and a CRLF ending its
`#!` line cut to LF. The folder also gets the package.json and package-lock.json the container
step copies in, and npm's hidden lockfile (`node_modules/.package-lock.json`, npmlockjson.py).

The layer is the one `tar_directory` packs from the container's folder (store/layers.py):
sorted, owned by 0:0, every mtime the lock's epoch, the folders above the tree 755; it is
hashed as it is written. A tree that needs code run (a package with `hasInstallScript` or a
`binding.gyp`), or that this assembler does not lay out (links, bundled packages, clashing
bins), is refused with `NotOnHost` naming the package: its caller builds it in a container.
"""

from __future__ import annotations

import posixpath
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from builder.core.errors import BuildError
from builder.core.inflate import read_tarball
from builder.kinds.npm import fetch as npmfetch
from builder.kinds.npm.entries import FILE, Entry, add_folders, put, write
from builder.kinds.npm.lockjson import hidden_lockfile
from builder.resolve import managers
from builder.store.layers import LayerFile

_NPM_CPU = {"amd64": "x64", "arm64": "arm64"}


class NotOnHost(BuildError):
    """The tree cannot be assembled on the host (it needs scripts run, or a layout this
    module does not make): build it in a container. `reason` says why, naming the package."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}; the tree is built in a container instead")


@dataclass(frozen=True, kw_only=True)
class Target:
    """What npm checks a package's `os`, `cpu` and `libc` against."""

    os: str
    cpu: str
    libc: str = "glibc"  # the images are Debian's (or Ubuntu's)

    @classmethod
    def of(cls, platform: str) -> Target:
        """`linux/amd64` -> os linux, cpu x64, as node's process.platform and .arch say."""
        os_name, _, arch = platform.partition("/")
        return cls(os=os_name, cpu=_NPM_CPU.get(arch, arch))


@dataclass(frozen=True, kw_only=True)
class Project:
    """The project `npm ci` installs: its name and version (the hidden lockfile's root), the
    names it depends on, and the files it leaves beside node_modules (its package.json and
    package-lock.json, by name)."""

    name: str
    version: str | None = None
    roots: tuple[str, ...]
    files: Mapping[str, str]

    @classmethod
    def of_tools(cls, specs: Sequence[str], packages: Sequence[Mapping[str, Any]]) -> Project:
        """The project the tools.npm recipe makes of tool `specs` and their pins."""
        return cls(
            name=managers.NPM_ROOT,
            roots=tuple(managers.npm_dependency(spec)[0] for spec in specs),
            files={
                "package.json": managers.npm_package_json(specs),
                "package-lock.json": managers.npm_package_lock(specs, packages),
            },
        )


def assemble_npm_tree(
    *,
    project: Project,
    packages: Sequence[Mapping[str, Any]],
    folder: str,
    target: Target,
    cacache: Path,
    epoch: int,
    dest: Path,
    what: str = "tools.npm",
) -> LayerFile:
    """Write the layer of the npm tree `packages` (package-lock pins, each with its `path`)
    of `project` installed in `folder` (its path in the image) to `dest`.

    `cacache` is npm's content store (`_cacache` in the download cache's npm folder, the one
    container steps mount as /root/.npm): tarballs fetched here serve `npm ci` and back.
    """
    installed = installed_packages(packages, target, project.roots)
    tarballs = npmfetch.fetch_all(installed, cacache, what=what)
    top = folder.strip("/")
    entries: dict[str, Entry] = {}
    with tempfile.TemporaryFile(dir=dest.parent) as spool:
        for pkg in installed:
            _extract(tarballs[pkg["path"]], f"{top}/{pkg['path']}", pkg, entries, spool)
        _link_bins(installed, top, entries, spool)
        texts = dict(project.files)
        if installed:
            texts["node_modules/.package-lock.json"] = hidden_lockfile(
                installed, project.name, project.version
            )
        for name, text in texts.items():
            entries[f"{top}/{name}"] = Entry(
                kind=tarfile.REGTYPE, mode=FILE, data=put(spool, text.encode())
            )
        add_folders(entries)
        return write(entries, spool, dest, epoch)


def installed_packages(
    packages: Sequence[Mapping[str, Any]], target: Target, roots: Sequence[str]
) -> list[Mapping[str, Any]]:
    """The pins npm would install for `target` in a project depending on `roots`, sorted by
    path: an optional package whose `os`, `cpu` or `libc` excludes the target is left out,
    with the optional packages only it needed; a required one is an error, as `npm ci` stops
    (EBADPLATFORM)."""
    reason = refusal(packages)
    if reason is not None:
        raise NotOnHost(reason)
    left_out = {str(p["path"]) for p in packages if not _fits(p, target)}
    for path in sorted(left_out):
        pkg = next(p for p in packages if p["path"] == path)
        if not pkg.get("optional"):
            msg = (
                f"tools.npm: {path} does not run on {target.os}/{target.cpu} (os {pkg.get('os')}, "
                f"cpu {pkg.get('cpu')}) and is not optional; npm would refuse the tree too"
            )
            raise BuildError(msg)
    kept = [p for p in packages if str(p["path"]) not in left_out]
    needed = {str(p["path"]) for root in roots for p in managers.npm_closure(kept, root)}
    return sorted(
        (p for p in kept if str(p["path"]) in needed or not p.get("optional")),
        key=lambda p: str(p["path"]),
    )


def refusal(packages: Sequence[Mapping[str, Any]]) -> str | None:
    """Why the lock alone says the tree of `packages` cannot be assembled on the host (its
    first package with install scripts, a link, a bundled package, no tarball), or None. A
    binding.gyp is only seen in a tarball: `assemble_npm_tree` refuses it then."""
    for pkg in packages:
        path = str(pkg["path"]).removeprefix("node_modules/")
        if pkg.get("hasInstallScript"):
            return f"{path} has install scripts (hasInstallScript)"
        if pkg.get("link"):
            return f"{path} is a link to a folder, not a registry tarball"
        if pkg.get("inBundle"):
            return f"{path} is bundled inside its parent's tarball"
        if not pkg.get("resolved") or not pkg.get("integrity"):
            return f"{path} has no resolved URL and integrity in the lock"
    return None


def _fits(pkg: Mapping[str, Any], target: Target) -> bool:
    """npm-install-checks' checkPlatform: each of os, cpu (and libc, on linux) allows it."""
    fits = _allows(pkg.get("os"), target.os) and _allows(pkg.get("cpu"), target.cpu)
    return fits and (target.os != "linux" or _allows(pkg.get("libc"), target.libc))


def _allows(rule: Any, value: str) -> bool:
    """An npm platform list: names, `!name` exclusions, or `any`; absent allows all."""
    if rule is None:
        return True
    names = [rule] if isinstance(rule, str) else list(rule)
    if names == ["any"]:
        return True
    excluded = [n[1:] for n in names if n.startswith("!")]
    allowed = [n for n in names if not n.startswith("!")]
    if value in excluded:
        return False
    return value in allowed or len(excluded) == len(names)


def _extract(
    tarball: Path, at: str, pkg: Mapping[str, Any], entries: dict[str, Entry], spool: IO[bytes]
) -> None:
    """Put the files of one package's tarball into `entries` under `at`, as pacote does."""
    names: dict[str, str] = {}  # .npmignore names seen, to drop a .gitignore beside one
    with read_tarball(tarball) as tar:
        for member in tar:
            parts = member.name.replace("\\", "/").split("/")[1:]  # strip: 1
            if not parts or ".." in parts or not (member.isreg() or member.isdir()):
                continue  # tar itself skips `..`; pacote skips links
            name = "/".join(p for p in parts if p not in ("", "."))
            if not name:
                continue
            if member.isdir():
                entries[f"{at}/{name}"] = Entry(kind=tarfile.DIRTYPE)
                continue
            head, _, base = name.rpartition("/")
            if base == ".npmignore":
                names[name] = name
            elif base == ".gitignore":
                renamed = f"{head}/.npmignore".lstrip("/")
                if renamed in names:
                    continue
                name = renamed
            if name == "binding.gyp":
                path = str(pkg["path"]).removeprefix("node_modules/")
                msg = f"{path} has a binding.gyp (npm builds it with node-gyp)"
                raise NotOnHost(msg)
            data = tar.extractfile(member)
            content = data.read() if data is not None else b""
            mode = FILE | (member.mode & 0o111)
            entries[f"{at}/{name}"] = Entry(
                kind=tarfile.REGTYPE, mode=mode, data=put(spool, content)
            )


def _link_bins(
    installed: Sequence[Mapping[str, Any]], top: str, entries: dict[str, Entry], spool: IO[bytes]
) -> None:
    """npm's bin-links for each package: `<node_modules>/.bin/<name>` -> its script, the
    script 755, a CRLF at the end of its `#!` line made LF."""
    for pkg in installed:
        path = str(pkg["path"])
        holder = path.rpartition("node_modules/")[0] + "node_modules"
        for name, script in _bins(pkg).items():
            link = f"{top}/{holder}/.bin/{name}"
            if link in entries:
                msg = f"two packages link the executable {holder}/.bin/{name}"
                raise NotOnHost(msg)
            file = f"{top}/{path}/{script}"
            entries[link] = Entry(
                kind=tarfile.SYMTYPE, link=posixpath.relpath(file, posixpath.dirname(link))
            )
            found = entries.get(file)
            if found is not None and found.kind == tarfile.REGTYPE:
                entries[file] = Entry(
                    kind=tarfile.REGTYPE, mode=0o755, data=_unix_hashbang(found.data, spool)
                )


def _bins(pkg: Mapping[str, Any]) -> dict[str, str]:
    """The package's `bin` as npm-normalize-package-bin leaves it: name -> clean path."""
    declared = pkg.get("bin") or {}
    if isinstance(declared, str):
        declared = {str(pkg.get("name") or pkg["path"]).rpartition("/")[2]: declared}
    found = {}
    for name, script in declared.items():
        base = posixpath.basename(str(name).replace("\\", "/").replace(":", "/"))
        clean = posixpath.normpath("/" + str(script).replace("\\", "/")).lstrip("/")
        if base and clean and base not in (".", ".."):
            found[base] = clean
    return found


def _unix_hashbang(data: tuple[int, int], spool: IO[bytes]) -> tuple[int, int]:
    """bin-links' dos2unix: a `#!` first line ending CRLF ends LF (only that line)."""
    offset, size = data
    spool.seek(offset)
    content = spool.read(size)
    first, newline, rest = content.partition(b"\n")
    if not (content.startswith(b"#!") and newline and first.endswith(b"\r") and len(first) > 3):
        return data
    return put(spool, first[:-1] + b"\n" + rest)
