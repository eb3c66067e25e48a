"""Dependency layers from a project's own lockfile (`[deps.<name>]`: pnpm, npm, pip, uv).

Everything lands under P = /opt/sandbox/deps/<name>. The project's files are checked against
the sha256 sandbox.lock holds, handed in read-only, and the manager runs in its frozen mode
(`pnpm install --frozen-lockfile`, `npm ci`, `pip --require-hashes`, `uv sync --frozen`), so
the tree is exactly the project's lock; a pip requirements.txt without hashes is installed
from the closure sandbox.lock pins for it (`pins`, `--no-deps`). pnpm and uv themselves come
from sandbox.lock's pins, unpacked on the host and copied to P/pnpm (run by P/bin/pnpm) and
P/bin/uv.

Two things can be built, and the node's env points at them:
- the tree (modes `install` and `mount`): P/node_modules or P/venv, on PATH (and NODE_PATH
  or VIRTUAL_ENV). A `store` with `mount` installs it too, from the store, to be exported.
- the store (mode `store`): the manager's own cache, warmed so that the task's frozen
  install runs with the network off: pnpm's store P/store, npm's cache P/npm-cache, uv's
  cache P/uv-cache, pip's wheels P/wheels. The build proves it by installing offline.
  pnpm, npm and uv write to their store or cache even offline (pnpm registers projects,
  npm writes logs and its index, uv takes a lock), and the image runs as any UID, so those
  three are world-writable; each container gets its own copy-on-write view of them, so
  nothing leaks between runs. pnpm is told to copy from it: a hard link into it would be
  chmod-ed, which only the owner may do. pip only reads its wheels: they stay read-only.
Timestamps the managers write into trees and caches are pinned to SOURCE_DATE_EPOCH
(`_PIN_TIMES`), so the same lock gives the same layer; uv's cache, whose folder names are
random and whose HTTP entries hold fetch times, is the one exception.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from builder.core.errors import BuildError, LockError
from builder.core.layout import DEPS_PREFIX, TREES
from builder.core.unpack import unpack
from builder.engine.interface import Mount
from builder.engine.step import INPUT_DIR, StepContext, download_cache_mount
from builder.kinds.deps.host import host_layer
from builder.kinds.kind import StepResult
from builder.kinds.layer import run_into_prefix
from builder.model.fields import FIX
from builder.model.lockfile import NodeLock
from builder.model.spec import DepManager, DepMode
from builder.model.toolinputs import DepsInputs
from builder.model.typed import write_inputs
from builder.net import downloads
from builder.resolve import managers
from builder.store.layers import LayerFile

PREFIX = DEPS_PREFIX
RECIPE = "deps/2"  # the kind's recipe version (its module's docstring says what each meant)
TOOL_DIR = "/tmp/sandbox-builder-tool"  # pnpm's package or uv's binaries, read-only
WORK = "/tmp/sandbox-builder-work"  # a scratch project for store steps; dropped
LOCKED_REQUIREMENTS = "sandbox-locked-requirements.txt"  # the `pins` of an unhashed file
_QUIET = {
    "npm_config_update_notifier": "false",
    "npm_config_fund": "false",
    "npm_config_audit": "false",
    "npm_config_manage_package_manager_versions": "false",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "UV_NO_PROGRESS": "1",
    "UV_PYTHON_DOWNLOADS": "never",
    "UV_PYTHON": "python3",
}

# Run by node: pin the times pnpm and npm write into their files to SOURCE_DATE_EPOCH.
# npm's index lines are "<sha1 of the JSON>\t<JSON>", so the sha1 is computed again.
_PIN_TIMES = r"""
const fs = require('fs'), path = require('path'), crypto = require('crypto');
const ms = Number(process.env.SOURCE_DATE_EPOCH) * 1000, date = new Date(ms).toUTCString();
const [kind, root] = process.argv.slice(2);
const walk = (dir, visit) => fs.existsSync(dir) && fs.readdirSync(dir, {withFileTypes: true})
  .forEach(e => e.isDirectory() ? walk(path.join(dir, e.name), visit)
    : e.isFile() && visit(path.join(dir, e.name)));
const edit = (file, change) => {
  if (!fs.existsSync(file)) return;
  const text = fs.readFileSync(file, 'utf8'), changed = change(text);
  if (changed !== text) fs.writeFileSync(file, changed);
};
const npmLine = line => {
  const tab = line.indexOf('\t');
  if (tab < 0) return line;
  const entry = JSON.parse(line.slice(tab + 1));
  entry.time = ms;
  if (entry.metadata) {
    entry.metadata.time = ms;
    const headers = entry.metadata.resHeaders;
    if (headers && headers.date) headers.date = date;
  }
  const json = JSON.stringify(entry);
  return crypto.createHash('sha1').update(json).digest('hex') + '\t' + json;
};
if (kind === 'pnpm-tree') {
  edit(path.join(root, '.modules.yaml'),
    t => t.replace(/("?prunedAt"?:\s*).*?(,?)$/m, `$1"${date}"$2`));
  edit(path.join(root, '.pnpm-workspace-state-v1.json'),
    t => t.replace(/("lastValidatedTimestamp":\s*)\d+/, `$1${ms}`));
} else if (kind === 'pnpm-store') {
  const pin = t => t.replace(/("checkedAt":\s*)\d+/g, `$1${ms}`);
  walk(root, f => f.endsWith('.json') && edit(f, pin));
} else if (kind === 'npm-cache') {
  const pin = t => t.split('\n').map(npmLine).join('\n');
  walk(path.join(root, '_cacache', 'index-v5'), f => edit(f, pin));
}
"""


def build_deps(ctx: StepContext, node: NodeLock) -> StepResult:
    """The tree's layer: assembled on the host where `host.py` can (npm and pnpm `install`
    trees that run no code), else installed by its manager in a container."""
    inputs = node.inputs_as(DepsInputs)
    prefix = f"{PREFIX}/{node.name.removeprefix('deps.')}"
    env = _env(inputs.manager.value, prefix, mode=inputs.mode.value)
    project = _project_files(ctx, node, inputs)
    layer = host_layer(ctx, node, project, prefix=prefix, recipe=RECIPE)
    if layer is None:
        layer = install_in_container(ctx, node)
    return StepResult(layers=[layer], env=env)


def install_in_container(ctx: StepContext, node: NodeLock) -> LayerFile:
    """The tree (or store) installed by its manager in a container of the node's parents."""
    inputs = node.inputs_as(DepsInputs)
    manager = inputs.manager.value
    prefix = f"{PREFIX}/{node.name.removeprefix('deps.')}"
    store = inputs.mode is DepMode.STORE
    tree = not store or bool(inputs.mount)
    files = {**_project_files(ctx, node, inputs), "pin-times.js": _PIN_TIMES}
    if inputs.pins is not None:  # a plain requirements.txt: install the closure the lock pins
        pins = [write_inputs(pin) for pin in inputs.pins]
        files[LOCKED_REQUIREMENTS] = managers.pip_requirements(pins)
    script, step_env, mounts = {
        "pnpm": _pnpm,
        "npm": _npm,
        "pip": _pip,
        "uv": _uv,
    }[manager](ctx, inputs, prefix, store=store, tree=tree)
    lines = [
        "umask 022",
        f"P={shlex.quote(prefix)}",
        'mkdir -p "$P"',
        script,
        'chmod -R a+rX "$P"',
        *[f'chmod -R a+rwX "$P/{s}"' for s in _WRITABLE[manager] if store],
    ]
    with (
        _tool(ctx, node, inputs) as tool_mounts,
        run_into_prefix(
            ctx,
            node,
            "\n".join(lines) + "\n",
            what=f"{node.name}: {manager} ({inputs.mode})",
            env={**_QUIET, **step_env},
            files=files,
            mounts=[*tool_mounts, *mounts],
        ) as capture,
    ):
        return capture()


_WRITABLE = {"pnpm": ["store"], "npm": ["npm-cache"], "pip": [], "uv": ["uv-cache"]}


def _env(manager: str, prefix: str, *, mode: str) -> dict[str, str]:
    """What the image gets: the store's settings and (install/mount) the tree on PATH."""
    path: list[str] = []
    env: dict[str, str] = {}
    if mode != "store":
        if TREES[manager] == "venv":
            env["VIRTUAL_ENV"] = f"{prefix}/venv"
            path.append(f"{prefix}/venv/bin")
        else:
            env["NODE_PATH"] = f"{prefix}/node_modules"
            path.append(f"{prefix}/node_modules/.bin")
    if manager in ("pnpm", "uv"):
        path.append(f"{prefix}/bin")
    if mode == "store":
        env.update(
            {
                "pnpm": {  # pnpm 11 reads pnpm_config_*, earlier ones npm_config_*
                    f"{config}_config_{key}": value
                    for config in ("npm", "pnpm")
                    for key, value in (
                        ("store_dir", f"{prefix}/store"),
                        ("package_import_method", "copy"),
                    )
                },
                "npm": {"npm_config_cache": f"{prefix}/npm-cache"},
                "pip": {"PIP_FIND_LINKS": f"{prefix}/wheels"},
                "uv": {"UV_CACHE_DIR": f"{prefix}/uv-cache", "UV_LINK_MODE": "copy"},
            }[manager]
        )
    if path:
        env["PATH"] = ":".join(path)
    return env


# -- one script per manager: (script, env for the step, extra mounts) --------------------------

Script = tuple[str, dict[str, str], list[Mount]]


def _copy(names: list[str], dest: str) -> str:
    sources = " ".join(f"{INPUT_DIR}/{n}" for n in names)
    return f'mkdir -p "{dest}" && cp {sources} "{dest}/"'


def _pnpm(ctx: StepContext, inputs: DepsInputs, prefix: str, **how: bool) -> Script:
    pin = inputs.installer
    if pin is None or pin.bin is None:
        msg = f"sandbox.lock: deps node at {inputs.path} uses pnpm but pins none. {FIX}"
        raise LockError(msg)
    files = ["package.json", "pnpm-lock.yaml"]
    lines = [
        f'mkdir -p "$P/bin" && cp -R {TOOL_DIR} "$P/pnpm"',
        f'printf \'#!/bin/sh\\nexec node %s "$@"\\n\' "$P/pnpm/{pin.bin}" > "$P/bin/pnpm"',
        'chmod 755 "$P/bin/pnpm"',
        f'test "$("$P/bin/pnpm" --version)" = {shlex.quote(pin.version)}',
    ]
    install = '"$P/bin/pnpm" install --frozen-lockfile --package-import-method=copy'
    mounts = []
    if how["store"]:
        lines += [
            _copy(files, WORK),
            f'cd {WORK} && "$P/bin/pnpm" fetch --store-dir "$P/store"',
        ]
        if how["tree"]:
            lines += [_copy(files, "$P"), f'cd "$P" && {install} --offline --store-dir "$P/store"']
        else:  # prove the task's offline install works, then forget this scratch project
            lines += [
                f'cd {WORK} && {install} --offline --store-dir "$P/store" >/dev/null',
                'rm -rf "$P"/store/v*/projects',
            ]
        lines.append(f'node {INPUT_DIR}/pin-times.js pnpm-store "$P/store"')
    elif how["tree"]:
        mounts.append(download_cache_mount(ctx.cache, "pnpm-store", "/tmp/pnpm-store"))
        lines += [_copy(files, "$P"), f'cd "$P" && {install} --store-dir /tmp/pnpm-store']
    if how["tree"]:
        lines.append(f'node {INPUT_DIR}/pin-times.js pnpm-tree "$P/node_modules"')
    return "\n".join(lines), {}, mounts


def _npm(ctx: StepContext, inputs: DepsInputs, prefix: str, **how: bool) -> Script:
    files = ["package.json", "package-lock.json"]
    lines: list[str] = []
    mounts = []
    if how["store"]:
        cache = '--cache "$P/npm-cache"'
        lines += [_copy(files, WORK), f"cd {WORK} && npm ci --ignore-scripts {cache}"]
        lines += [f"rm -rf node_modules && npm ci --offline --ignore-scripts {cache}"]
        if how["tree"]:
            lines += [_copy(files, "$P"), f'cd "$P" && npm ci --offline {cache}']
        lines += [
            'rm -rf "$P/npm-cache/_logs" "$P/npm-cache/_update-notifier-last-checked"',
            f'node {INPUT_DIR}/pin-times.js npm-cache "$P/npm-cache"',
        ]
    elif how["tree"]:
        mounts.append(download_cache_mount(ctx.cache, "npm", "/root/.npm"))
        lines += [_copy(files, "$P"), 'cd "$P" && npm ci']
    return "\n".join(lines), {}, mounts


def _pip(ctx: StepContext, inputs: DepsInputs, prefix: str, **how: bool) -> Script:
    requirements = f"--require-hashes -r {INPUT_DIR}/requirements.txt"
    if inputs.pins is not None:
        requirements = f"--require-hashes --no-deps -r {INPUT_DIR}/{LOCKED_REQUIREMENTS}"
    lines: list[str] = []
    source = ""
    if how["store"]:
        offline = '--no-index --find-links "$P/wheels"'
        lines += [
            f"python3 -m venv {WORK}/venv",
            f'{WORK}/venv/bin/pip download --quiet {requirements} -d "$P/wheels"',
            f"{WORK}/venv/bin/pip install --quiet {offline} {requirements}",
        ]
        source = offline
    if how["tree"]:
        lines += [
            'python3 -m venv "$P/venv"',
            f'"$P/venv/bin/pip" install --quiet {source} {requirements}',
        ]
    mounts = [download_cache_mount(ctx.cache, "pip", "/root/.cache/pip")]
    return "\n".join(lines), {}, mounts


def _uv(ctx: StepContext, inputs: DepsInputs, prefix: str, **how: bool) -> Script:
    files = ["pyproject.toml", "uv.lock"]
    sync = '"$P/bin/uv" sync --frozen --no-install-workspace --link-mode=copy'
    lines = [f'mkdir -p "$P/bin" && cp {TOOL_DIR}/uv {TOOL_DIR}/uvx "$P/bin/"']
    env: dict[str, str] = {}
    mounts = []
    if how["store"]:
        env["UV_CACHE_DIR"] = f"{prefix}/uv-cache"
        lines += [
            _copy(files, WORK),
            f"cd {WORK} && UV_PROJECT_ENVIRONMENT={WORK}/venv {sync}",
            f"rm -rf {WORK}/venv && UV_PROJECT_ENVIRONMENT={WORK}/venv {sync} --offline",
        ]
    else:
        mounts.append(download_cache_mount(ctx.cache, "uv", "/root/.cache/uv"))
        env["UV_CACHE_DIR"] = "/root/.cache/uv"
    if how["tree"]:
        offline = " --offline" if how["store"] else ""
        lines += [
            _copy(files, "$P"),
            f'cd "$P" && UV_PROJECT_ENVIRONMENT="$P/venv" {sync} --compile-bytecode{offline}',
        ]
    if how["store"]:  # the interpreter cache describes this build container, not the image
        lines.append('rm -rf "$P"/uv-cache/interpreter-v*')
    return "\n".join(lines), env, mounts


# -- inputs ------------------------------------------------------------------------------------


def _project_files(ctx: StepContext, node: NodeLock, inputs: DepsInputs) -> dict[str, str]:
    """The project's manager files, as locked: each must still have its locked sha256."""
    folder = ctx.project_dir / inputs.path
    found: dict[str, str] = {}
    for name, expected in sorted(inputs.files.items()):
        path = folder / name
        try:
            data = path.read_bytes()
        except OSError as exc:
            msg = f"{node.name}: cannot read {path} ({exc.strerror}). Restore it or fix `path`"
            raise BuildError(msg) from None
        if hashlib.sha256(data).hexdigest() != expected:
            msg = f"{node.name}: {path} changed since sandbox.lock was made; run `sandbox lock`"
            raise BuildError(msg)
        try:
            found[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            msg = f"{node.name}: {path} is not UTF-8 text. Save it as UTF-8 and lock again"
            raise BuildError(msg) from None
    return found


@contextmanager
def _tool(ctx: StepContext, node: NodeLock, inputs: DepsInputs) -> Iterator[list[Mount]]:
    """pnpm's package or uv's binaries from the lock's pin, unpacked, mounted at TOOL_DIR."""
    pin = inputs.installer
    if inputs.manager not in (DepManager.PNPM, DepManager.UV) or pin is None:
        yield []
        return
    archive = downloads.fetch(
        pin.url, sha256=pin.sha256, dest_dir=ctx.cache.downloads, what=node.name
    )
    work = ctx.cache.tree_scratch(f"{node.name}-tool-")
    try:
        if inputs.manager is DepManager.PNPM:
            unpack(archive, work / "tool", fmt="tgz", root="package")
        else:
            unpack(archive, work / "tool", fmt="zip", root=f"uv-{pin.version}.data/scripts")
        work.chmod(0o755)
        yield [Mount(source=str(work / "tool"), target=TOOL_DIR)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
