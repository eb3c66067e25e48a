"""Pinning tool closures with the managers' own resolvers, in a container of their runtime.

pip: `pip install --dry-run --report` resolves each tool on its own (each gets its own venv),
against the very python the image will run, and the report gives every wheel's sha256.
For another platform than the host's, the host's python of the same version resolves with
that platform's wheel tags (`--platform manylinux_<glibc>_<arch> --only-binary=:all:`), so no
emulation is needed; a package with no wheel for that platform is then an error.
npm: `npm install --package-lock-only` writes the package-lock of all npm tools, with
integrity; given the previous lock, npm keeps every pin that still satisfies the request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from builder.core.errors import ResolutionError
from builder.engine.step import INPUT_DIR, StepContext, download_cache_mount, run_in_stage
from builder.resolve import managers

_PIP_RESOLVE = """python3 -m venv /tmp/resolver
{target}
for req in {names}; do
  /tmp/resolver/bin/pip install --quiet --disable-pip-version-check --dry-run \\
    --ignore-installed --report /tmp/report.json $target -r "{input}/$req.txt" {constraints}
  echo "@@report $req"
  cat /tmp/report.json
  echo
  echo "@@end"
done
"""

_NPM_RESOLVE = f"""mkdir -p /tmp/resolver && cd /tmp/resolver
cp {INPUT_DIR}/package.json .
if [ -f {INPUT_DIR}/package-lock.json ]; then cp {INPUT_DIR}/package-lock.json .; fi
npm install --package-lock-only --ignore-scripts --no-audit --no-fund --loglevel=warn
echo @@lock
cat package-lock.json
echo @@end
"""


# The target's wheel tags: every manylinux tag its arch takes with the glibc of the resolving
# python (the same Debian release as the target's base), newest first, legacy aliases too (pip
# widens none of them itself); pip 23 takes such tags only with --target, though a dry run
# writes nothing there.
_PIP_TARGET = """target=$(/tmp/resolver/bin/python - <<'EOF'
import os
glibc = int(os.confstr("CS_GNU_LIBC_VERSION").split()[1].split(".")[1])
tags = [f"manylinux_2_{{m}}_{arch}" for m in range(glibc, 4, -1)]
tags += [f"manylinux{{alias}}_{arch}" for alias in ("2014", "2010", "1")]
print("--only-binary=:all: --target /tmp/resolved", *(f"--platform {{t}}" for t in tags))
EOF
)"""
WHEEL_ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


def resolve_pip_tools(
    ctx: StepContext, requirements: Mapping[str, str], *, target: str | None = None
) -> dict[str, Any]:
    """tool -> {requirement, packages: [{name, version, sha256, url}]} for each requirement
    (the url lets the build fetch and install the very wheel on the host).

    `target` is a platform other than the one `ctx`'s stage runs (resolved by wheel tags).
    """
    files = {tool: req + "\n" for tool, req in requirements.items()}
    closures = resolve_pip_closures(
        ctx, "tools.pip", files, what="resolving pip tools", target=target, urls=True
    )
    return {
        tool: {"requirement": req, "packages": closures[tool]}
        for tool, req in sorted(requirements.items())
    }


def resolve_pip_closures(
    ctx: StepContext,
    node: str,
    requirements: Mapping[str, str],
    *,
    what: str,
    constraints: str | None = None,
    target: str | None = None,
    urls: bool = False,
) -> dict[str, list[dict[str, str]]]:
    """key -> the closure pip resolves for requirements file text `requirements[key]`.

    Each file is resolved on its own, in a container of `node`'s parents (the very python the
    image runs); `constraints` (a constraints file's text) holds pins to keep where they fit;
    `target`, another platform than the container's, is resolved by its wheel tags; `urls`
    records each file's download url too.
    """
    files = {f"{key}.txt": text for key, text in requirements.items()}
    extra = ""
    if constraints is not None:
        files["constraints.pip"] = constraints
        extra = f'-c "{INPUT_DIR}/constraints.pip"'
    script = _PIP_RESOLVE.format(
        names=" ".join(sorted(requirements)),
        input=INPUT_DIR,
        constraints=extra,
        target=_PIP_TARGET.format(arch=WHEEL_ARCH[target]) if target else "target=",
    )
    with run_in_stage(
        ctx,
        node,
        script,
        what=what,
        files=files,
        mounts=[download_cache_mount(ctx.cache, "pip", "/root/.cache/pip")],
        error=ResolutionError,
    ):
        log = ctx.cache.log_path(node).read_text(errors="replace")
    reports = _sections(log, "@@report ")
    return {
        key: _pip_pins(node, key, reports.get(key, ""), urls=urls) for key in sorted(requirements)
    }


def _pip_pins(node: str, tool: str, text: str, *, urls: bool = False) -> list[dict[str, str]]:
    try:
        report = json.loads(text)
    except json.JSONDecodeError:
        msg = f"{node}: pip gave no resolution report for {tool}; see the log"
        raise ResolutionError(msg) from None
    pins = []
    for item in report.get("install", []):
        info = item.get("download_info", {})
        archive = info.get("archive_info", {})
        sha = archive.get("hashes", {}).get("sha256") or archive.get("hash", "").removeprefix(
            "sha256="
        )
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        if not sha:
            msg = (
                f"{node}: {tool} needs {name} {version} from {info.get('url', '?')}, which "
                "has no sha256 (a VCS or local requirement?). Use a release from the index"
            )
            raise ResolutionError(msg)
        pin = {"name": _normalize(name), "version": version, "sha256": sha}
        if urls and info.get("url"):
            pin["url"] = str(info["url"])
        pins.append(pin)
    return sorted(pins, key=lambda p: p["name"])


def resolve_npm_tools(
    ctx: StepContext, specs: Sequence[str], previous: Sequence[Mapping[str, Any]] | None
) -> list[dict[str, Any]]:
    """The pins of every package the npm tools need; `previous` pins are kept when they fit."""
    files = {"package.json": managers.npm_package_json(specs)}
    if previous:
        files["package-lock.json"] = managers.npm_package_lock(specs, previous)
    with run_in_stage(
        ctx,
        "tools.npm",
        _NPM_RESOLVE,
        what="resolving npm tools",
        files=files,
        mounts=[download_cache_mount(ctx.cache, "npm", "/root/.npm")],
        error=ResolutionError,
    ):
        log = ctx.cache.log_path("tools.npm").read_text(errors="replace")
    try:
        lockfile = json.loads(_sections(log, "@@lock")[""])
    except (KeyError, json.JSONDecodeError):
        msg = "tools.npm: npm wrote no package-lock.json; see the log"
        raise ResolutionError(msg) from None
    return managers.npm_packages_from_lock(lockfile)


def _sections(log: str, marker: str) -> dict[str, str]:
    """The text between `<marker><name>` lines and the next `@@end`, by name."""
    found: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in log.splitlines():
        if name is None and line.startswith(marker):
            name, lines = line[len(marker) :].strip(), []
        elif name is not None and line == "@@end":
            found[name] = "\n".join(lines)
            name = None
        elif name is not None:
            lines.append(line)
    return found


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
