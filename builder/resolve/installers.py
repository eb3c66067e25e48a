"""The package manager a deps tree needs besides its runtime: pnpm or uv, pinned by digest.

pnpm comes from the npm registry: the version package.json's `packageManager` names, else the
newest release of a major that reads the lockfile's `lockfileVersion` and runs on the image's
node (npm's range syntax for `engines.node` is read here). uv comes from PyPI as the
manylinux wheel of the platform: the version `[tool.uv] required-version` pins exactly, else
the newest. npm and pip ship with their runtime.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
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
