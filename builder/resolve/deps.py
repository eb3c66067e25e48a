"""Pinning a project's dependency tree (`[deps.<name>]`): its files and its package manager.

The project's own lockfile already pins the tree, so sandbox.lock records its files' sha256
(a changed lockfile makes the node rebuild) and pins only what the build needs besides them:
the package manager. npm and pip ship with their runtime. A pip `requirements.txt` whose every
line carries `--hash` is used as it is; one without hashes (plain `==` pins or ranges, what
most projects have) is resolved here, as `tools.pip` is, and its whole closure pinned with
sha256 in sandbox.lock (`pins`): the build installs exactly those. pnpm and uv are pinned by
`installers`. A pin is kept, so relocking gives the same bytes, until what chose it (its
`requested` string) changes or `lock --update` names the node.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from builder.core.errors import ResolutionError
from builder.model.spec import DepSpec
from builder.resolve.installers import pnpm_request, resolve_pnpm, resolve_uv, uv_request

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
