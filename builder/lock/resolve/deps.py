"""Pinning a project's dependency tree (`[deps.<name>]`): its files and its package manager.

The project's own lockfile already pins the tree, so sandbox.lock records its files' sha256
(a changed lockfile makes the node rebuild) and pins only what the build needs besides them:
the package manager. npm and pip ship with their runtime. A pip `requirements.txt` whose every
line carries `--hash` is used as it is; one without hashes (plain `==` pins or ranges, what
most projects have) is resolved here, as `tools.pip` is, and its whole closure pinned with
sha256 in sandbox.lock (`pins`): the build installs exactly those. pnpm comes from the npm registry:
the version package.json's `packageManager` names, else the newest release of a major that
reads the lockfile's `lockfileVersion` and runs on the image's node. uv comes from PyPI as
the manylinux wheel of the platform: the version `[tool.uv] required-version` pins exactly,
else the newest. A pin is kept, so relocking gives the same bytes, until what chose it (its
`requested` string) changes or `lock --update` names the node.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from builder.core.errors import ResolutionError
from builder.model.spec import DepSpec
from builder.net.downloads import fetch, get_json

NPM_REGISTRY = "https://registry.npmjs.org"
PYPI = "https://pypi.org"
# lockfileVersion (or its major) -> the pnpm majors that read it, preferred first: the one
# that writes it, and for 9.0 (written by pnpm 9 and 10) the newer one.
PNPM_FOR_LOCKFILE = {"5.3": (6, 7), "5.4": (7,), "6": (8,), "9": (10, 9)}
# pnpm 12 and later replace the JavaScript CLI by a native binary this recipe cannot run.
PNPM_JS_MAJORS = range(6, 12)
_PACKAGE_MANAGER = re.compile(r"pnpm@(\d+\.\d+\.\d+)(?:\+(sha\d+)\.([0-9a-fA-F]+))?")
_LOCKFILE_VERSION = re.compile(r"""^lockfileVersion:\s*['"]?([0-9.]+)""", re.MULTILINE)
_ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


# requirements file text, constraints file text (or None) -> the closure's pins
PipResolver = Callable[[str, str | None], list[dict[str, str]]]


def lock_dep(
    dep: DepSpec,
    *,
    runtime_version: str,
    old: Mapping[str, Any] | None,
    update: bool,
    update_names: Sequence[str] | None,
    platform: str,
    downloads: Path,
    project_dir: Path,
    resolve_pip: PipResolver,
) -> dict[str, Any]:
    """The locked inputs of node `deps.<name>` (see the module docstring for what is pinned).

    `project_dir` is the folder holding sandbox.toml; the files' hashes, read when the spec
    was loaded, prove they did not change since. `update` says `lock --update` names the
    node; `update_names` are the names it was given (a pinned package among them moves alone).
    """
    folder = _project_folder(dep, project_dir)
    _check_mode(dep)
    inputs: dict[str, Any] = {
        "manager": dep.manager,
        "mode": dep.mode,
        "path": dep.path,
        "files": dict(sorted(dep.files.items())),
        "runtime": runtime_version,
    }
    if dep.mount:
        inputs["mount"] = dep.mount
    if dep.manager == "pip" and not requirements_hashed(folder / "requirements.txt", dep):
        inputs["requires"] = requirement_names(folder / "requirements.txt")
        inputs["pins"] = _pip_pins(
            folder / "requirements.txt",
            inputs,
            old=old,
            update=update,
            update_names=update_names,
            resolve=resolve_pip,
        )
    if dep.manager in ("pnpm", "uv"):
        what = f"deps.{dep.name}"
        if dep.manager == "pnpm":
            request = pnpm_request(folder, dep, runtime_version)
        else:
            request = uv_request(folder, dep)
        before = old.get(dep.manager) if old and old.get("manager") == dep.manager else None
        if before and not update and before.get("requested") == request:
            inputs[dep.manager] = dict(before)
        elif dep.manager == "pnpm":
            inputs["pnpm"] = resolve_pnpm(request, runtime_version, downloads=downloads, what=what)
        else:
            inputs["uv"] = resolve_uv(request, platform, what=what)
    return inputs


def _project_folder(dep: DepSpec, project_dir: Path) -> Path:
    folder = project_dir / dep.path
    for name, expected in dep.files.items():
        try:
            actual = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        except OSError:
            actual = ""
        if actual != expected:
            msg = (
                f"[deps.{dep.name}]: {folder / name} changed (or vanished) while locking. "
                "Leave the project's files alone, then run `sandbox lock` again"
            )
            raise ResolutionError(msg)
    return folder


def _check_mode(dep: DepSpec) -> None:
    if dep.mode == "mount" and not dep.mount:
        msg = (
            f'sandbox.toml: [deps.{dep.name}] mode = "mount" needs `mount`, the absolute path '
            'the tree appears at in the container (e.g. mount = "/workspace/web/node_modules"). '
            'Add it, or use mode = "install"'
        )
        raise ResolutionError(msg)


# -- pip ---------------------------------------------------------------------------------------


def requirements_hashed(path: Path, dep: DepSpec) -> bool:
    """Whether every requirement of `path` is pinned with `==` and carries `--hash` (the file
    is installed as it is), or none carries a hash (sandbox lock pins its closure)."""
    where = f"{dep.path}/requirements.txt"
    unhashed: list[str] = []
    hashed = 0
    for line in _logical_lines(path.read_text(encoding="utf-8", errors="replace")):
        if line.startswith(("-r", "--requirement", "-c", "--constraint")):
            msg = (
                f"{where}: `{line}` includes another file, which [deps.{dep.name}] does not "
                "hand to the build. Put every requirement into this one file"
            )
            raise ResolutionError(msg)
        if line.startswith("-") and not line.startswith(("-e", "--editable")):
            continue  # an option line: --index-url, --find-links, ...
        requirement = line.split(" -", 1)[0]
        if re.search(r"--hash[= ]", line) and re.search(r"==|@", requirement):
            hashed += 1
        else:
            unhashed.append(requirement)
    if hashed and unhashed:
        shown = ", ".join(unhashed[:5]) + (" ..." if len(unhashed) > 5 else "")
        msg = (
            f"{where}: {len(unhashed)} requirement(s) have no --hash ({shown}) while the "
            f"others do. Either give every line its hashes (`pip-compile --generate-hashes`), "
            "or drop them all and let `sandbox lock` pin the closure with hashes"
        )
        raise ResolutionError(msg)
    return hashed > 0


def requirement_names(path: Path) -> list[str]:
    """The distributions a requirements file names (normalized, sorted): what was asked for."""
    names = set()
    for line in _logical_lines(path.read_text(encoding="utf-8", errors="replace")):
        found = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if found and not line.startswith("-"):
            names.add(re.sub(r"[-_.]+", "-", found[1]).lower())
    return sorted(names)


def _pip_pins(
    path: Path,
    inputs: Mapping[str, Any],
    *,
    old: Mapping[str, Any] | None,
    update: bool,
    update_names: Sequence[str] | None,
    resolve: PipResolver,
) -> list[dict[str, str]]:
    """The closure of an unhashed requirements file: the old pins while the file and python
    are the same and no update asks; `lock --update <package>` moves that package (and what
    it needs), the other pins held as constraints; an update of the node moves them all."""
    before = list(old.get("pins", [])) if old else []
    same = bool(before) and all(
        old is not None and old.get(k) == inputs[k] for k in ("files", "runtime")
    )
    named = {re.sub(r"[-_.]+", "-", n).lower() for n in update_names or ()}
    moving = {p["name"] for p in before if p["name"] in named}
    if same and not update and not moving:
        return before
    constraints = None
    if same and not update:
        held = [p for p in before if p["name"] not in moving]
        constraints = "".join(f"{p['name']}=={p['version']}\n" for p in held)
    return resolve(path.read_text(encoding="utf-8"), constraints)


def _logical_lines(text: str) -> list[str]:
    """Lines as pip reads them: continuations joined, comments and blanks dropped."""
    joined = re.sub(r"\\\r?\n", " ", text)
    lines = (re.sub(r"(^|\s)#.*", "", line).strip() for line in joined.splitlines())
    return [line for line in lines if line]


# -- pnpm --------------------------------------------------------------------------------------


def pnpm_request(folder: Path, dep: DepSpec, runtime_version: str) -> str:
    """What chooses pnpm's version: `packageManager pnpm@X` or the lockfile's version and node."""
    package = _read_json_field(folder / "package.json", dep)
    wanted = package.get("packageManager")
    if isinstance(wanted, str) and wanted:
        if not _PACKAGE_MANAGER.fullmatch(wanted):
            msg = (
                f"{dep.path}/package.json: packageManager is {wanted!r}, but [deps.{dep.name}] "
                'uses pnpm. Write "packageManager": "pnpm@<x.y.z>" or change `manager`'
            )
            raise ResolutionError(msg)
        return f"packageManager {wanted}"
    text = (folder / "pnpm-lock.yaml").read_text(encoding="utf-8", errors="replace")
    found = _LOCKFILE_VERSION.search(text)
    if not found or not _pnpm_majors(found[1]):
        version = found[1] if found else "missing"
        msg = (
            f"{dep.path}/pnpm-lock.yaml: lockfileVersion {version} is not one pnpm 6 to 10 "
            f"writes, so the pnpm to use is unknown. Pin it in {dep.path}/package.json: "
            '"packageManager": "pnpm@<x.y.z>"'
        )
        raise ResolutionError(msg)
    node = _version(runtime_version)[0]
    return f"lockfileVersion {found[1]} on node {node}"


def resolve_pnpm(request: str, runtime: str, *, downloads: Path, what: str) -> dict[str, Any]:
    """The pnpm release `request` asks for: version, tarball URL and sha256, its CLI file."""
    packument = get_json(f"{NPM_REGISTRY}/pnpm", what=what)
    releases: dict[str, Any] = packument.get("versions", {})
    pinned = _PACKAGE_MANAGER.search(request) if request.startswith("packageManager") else None
    if pinned:
        version = pinned[1]
        if version not in releases:
            msg = f"{what}: package.json asks for pnpm {version}, which the npm registry lacks"
            raise ResolutionError(msg)
    else:
        version = _newest_pnpm(releases, request, runtime, what)
    manifest = releases[version]
    cli = _pnpm_cli(manifest, version, what)
    url = str(manifest["dist"]["tarball"])
    archive = fetch(url, sha256=None, dest_dir=downloads, what=what, error=ResolutionError)
    _check_digest(archive, "sha512", _integrity_hex(manifest["dist"].get("integrity")), url, what)
    if pinned and pinned[2]:
        _check_digest(archive, pinned[2], pinned[3].lower(), url, what)
    return {
        "version": version,
        "url": url,
        "sha256": archive.name,
        "bin": cli,
        "requested": request,
    }


def _newest_pnpm(releases: Mapping[str, Any], request: str, runtime: str, what: str) -> str:
    wanted = _pnpm_majors(request.split()[1])
    for major in wanted:
        candidates = [
            v
            for v, manifest in releases.items()
            if _version(v)[0] == major
            and _is_release(v)
            and not manifest.get("deprecated")
            and _satisfies(runtime, manifest.get("engines", {}).get("node", ""))
        ]
        if candidates:
            return max(candidates, key=_version)
    majors = " or ".join(str(m) for m in wanted)
    msg = (
        f"{what}: no release of pnpm {majors} runs on node {runtime}. Use a newer node "
        '([runtimes] node), or pin pnpm with "packageManager" in package.json'
    )
    raise ResolutionError(msg)


def _pnpm_majors(lockfile_version: str) -> tuple[int, ...]:
    major = lockfile_version.split(".")[0]
    return PNPM_FOR_LOCKFILE.get(lockfile_version) or PNPM_FOR_LOCKFILE.get(major, ())


def _pnpm_cli(manifest: Mapping[str, Any], version: str, what: str) -> str:
    """The JavaScript file that is pnpm's CLI in its package, e.g. `bin/pnpm.cjs`."""
    bins = manifest.get("bin")
    cli = bins.get("pnpm") if isinstance(bins, dict) else bins
    major = _version(version)[0]
    if major not in PNPM_JS_MAJORS or not str(cli).endswith((".js", ".cjs", ".mjs")):
        msg = (
            f"{what}: pnpm {version} is not a JavaScript CLI this recipe can run (pnpm "
            f"{PNPM_JS_MAJORS.start} to {PNPM_JS_MAJORS.stop - 1} are). Pin one of those in "
            'package.json: "packageManager": "pnpm@<x.y.z>"'
        )
        raise ResolutionError(msg)
    return str(cli).removeprefix("./")


def _integrity_hex(integrity: Any) -> str | None:
    """The hex sha512 of an npm `integrity` string (`sha512-<base64>`), if it has one."""
    for part in str(integrity or "").split():
        if part.startswith("sha512-"):
            return base64.b64decode(part.removeprefix("sha512-")).hex()
    return None


def _check_digest(path: Path, algorithm: str, expected: str | None, url: str, what: str) -> None:
    if expected is None or algorithm not in ("sha224", "sha256", "sha384", "sha512"):
        return
    actual = hashlib.new(algorithm, path.read_bytes()).hexdigest()
    if actual != expected:
        path.unlink(missing_ok=True)
        msg = (
            f"{what}: {url} does not match the {algorithm} its publisher lists (expected "
            f"{expected[:16]}..., got {actual[:16]}...). A mirror or proxy altered it; fix "
            "that, then run `sandbox lock` again"
        )
        raise ResolutionError(msg)


# -- uv ----------------------------------------------------------------------------------------


def uv_request(folder: Path, dep: DepSpec) -> str:
    """`required-version ==X` when pyproject.toml pins uv exactly, else `newest`."""
    try:
        project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"{dep.path}/pyproject.toml is not valid TOML ({exc}). Fix it"
        raise ResolutionError(msg) from None
    required = str(project.get("tool", {}).get("uv", {}).get("required-version", ""))
    exact = re.fullmatch(r"\s*(?:==)?\s*(\d+\.\d+\.\d+)\s*", required)
    return f"required-version =={exact[1]}" if exact else "newest"


def resolve_uv(request: str, platform: str, *, what: str) -> dict[str, Any]:
    """The uv wheel for `platform`: version, URL and sha256 as PyPI lists them."""
    index = f"{PYPI}/pypi/uv/json"
    project = get_json(index, what=what)
    version = request.removeprefix("required-version ==")
    if request == "newest":
        version = str(project["info"]["version"])
    files = project.get("releases", {}).get(version) or []
    arch = _ARCH.get(platform, "x86_64")
    wheels = sorted(
        f["filename"]
        for f in files
        if not f.get("yanked") and re.search(rf"-manylinux_?\w*_{arch}\b", f["filename"])
    )
    if not wheels:
        msg = (
            f"{what}: PyPI lists no manylinux {arch} wheel of uv {version}. Pin another "
            "version with [tool.uv] required-version in pyproject.toml"
        )
        raise ResolutionError(msg)
    wheel = next(f for f in files if f["filename"] == wheels[0])
    return {
        "version": version,
        "url": urljoin(index, wheel["url"]),
        "sha256": wheel["digests"]["sha256"],
        "requested": request,
    }


def _read_json_field(path: Path, dep: DepSpec) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = f"{dep.path}/{path.name} is not valid JSON ({exc}). Fix it"
        raise ResolutionError(msg) from None
    return data if isinstance(data, dict) else {}


# -- versions ----------------------------------------------------------------------------------
# Just enough of semver to read `engines.node` ranges (">=18.12", "^14.18 || >=16"). A range
# this cannot parse counts as satisfied: pnpm itself checks again when it runs.

_COMPARATOR = re.compile(r"(>=|<=|>|<|=|\^|~)?\s*v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?")


def _version(text: str) -> tuple[int, int, int]:
    """`18.19.0+dfsg-1` -> (18, 19, 0): a Debian epoch, a `v` and any suffix dropped."""
    found = re.match(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", text.split(":", 1)[-1])
    if not found:
        return (0, 0, 0)
    major, minor, patch = (int(part or 0) for part in found.groups())
    return (major, minor, patch)


def _is_release(version: str) -> bool:
    return re.fullmatch(r"\d+\.\d+\.\d+", version) is not None


def _satisfies(version: str, ranges: str) -> bool:
    if not ranges.strip() or ranges.strip() in ("*", "x"):
        return True
    have = _version(version)
    for alternative in ranges.split("||"):
        comparators = _COMPARATOR.findall(alternative)
        if not comparators:
            return True
        if all(_holds(have, *c) for c in comparators):
            return True
    return False


def _holds(have: tuple[int, int, int], op: str, *parts: str) -> bool:
    prefix: list[int] = []
    for part in parts:  # "18.x" and "18" fix the major only
        if not part.isdigit():
            break
        prefix.append(int(part))
    base = (*prefix, 0, 0, 0)[:3]
    if op == ">=":
        return have >= base
    if op == ">":
        return have > base
    if op == "<=":
        return have <= base
    if op == "<":
        return have < base
    if op == "^":
        return have >= base and have[0] == base[0]
    if op == "~":
        return have >= base and have[:2] == base[:2]
    return have[: len(prefix)] == base[: len(prefix)]
