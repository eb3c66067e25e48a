"""The Dockerfile equivalent to a sandbox.lock: what a careful team would write by hand.

One RUN per layer kind, in the usual order (system, runtimes, tools, deps), each installing
exactly the lock's pins and cleaning its caches in the same RUN:
- system: `apt-get install` of every package of the locked closure at its version, the user.
- runtimes: the locked wheel or archive downloaded, checked against its sha256, unpacked
  into the same prefix as `sandbox build` uses (`provider = "apt"` runtimes are in system).
- tools: each pip tool in its own venv from its closure with `--require-hashes`; the npm
  tools with `npm ci` from the package-lock rendered from the lock (COPYed in just before).
- deps: the project's files COPYed in, the locked pnpm fetched and checked, then
  `pnpm install --frozen-lockfile`.

The host's CA bundle (for the TLS-intercepting proxy, DESIGN.md §9) must not land in a layer,
and the classic builder has no secret mounts: a `COPY` followed by `rm` in the next RUN would
leave it in the COPY's layer. So the build arg SANDBOX_CA_URL points at the bundle served over
HTTP by the benchmark on the docker0 bridge; each RUN that needs TLS fetches it to /tmp, points
pip/npm/pnpm/python at it and deletes it in that same RUN. The small Python helper that fetches
and unpacks (`_HELPER`) travels base64-encoded inside the RUN line, so no file is added for it
either, and a change to it changes the RUN line (hence Docker's cache key) as it should.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from builder.image.assemble import compose_env
from builder.kinds import KINDS
from builder.model.inputs import RuntimeInputs, SystemInputs
from builder.model.lockfile import Lock, NodeLock, stack
from builder.model.spec import DepManager, DepMode, Provider, Spec
from builder.model.toolinputs import DepsInputs, NpmToolsInputs, PipToolsInputs
from builder.model.typed import write_inputs
from builder.resolve import managers

CA_ARG = "SANDBOX_CA_URL"
# apt-get update as a hand-written Dockerfile has it (sandbox build's own also bounds each fetch).
UPDATE = "apt-get -o Acquire::Retries=3 update -qq >/dev/null"
CA_FILE = "/tmp/sandbox-ca.crt"
LABEL = "dev.sandbox-bench"  # on the final image: how the benchmark finds its images
PIP_PREFIX = "/opt/sandbox/tools/pip"
NPM_PREFIX = "/opt/sandbox/tools/npm"
_CA_VARS = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "NODE_EXTRA_CA_CERTS")
_QUIET = "npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false"

# Run by the image's python3: `ca URL DEST`, `get URL SHA256 FORMAT ROOT DEST [KEEP]`
# (download, or take from the folder KEEP where it was kept by its sha256; check; unpack what
# lies under ROOT), `link TOOL VENV BINDIR` (run by the venv's python:
# link the tool's console scripts into BINDIR, as the tools.pip recipe does).
_HELPER = r"""
import hashlib, importlib.metadata as md, io, os, sys, tarfile, urllib.request, zipfile
def fetch(url):
    with urllib.request.urlopen(url, timeout=300) as response:
        return response.read()
def put(dest, rel, data, mode):
    if rel.startswith("/") or ".." in rel.split("/"):
        sys.exit(f"unsafe path in archive: {rel}")
    path = os.path.join(dest, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as out:
        out.write(data)
    os.chmod(path, 0o755 if mode & 0o111 else 0o644)
cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "ca":
    with open(args[1], "wb") as out:
        out.write(fetch(args[0]))
elif cmd == "get":
    url, sha, fmt, root, dest = args[:5]
    kept = os.path.join(args[5], sha) if len(args) > 5 else ""
    if kept and os.path.exists(kept):
        with open(kept, "rb") as cached:
            data = cached.read()
    else:
        data = fetch(url)
    if hashlib.sha256(data).hexdigest() != sha:
        sys.exit(f"{url}: sha256 differs from the lock")
    if kept and not os.path.exists(kept):
        with open(kept + ".part", "wb") as out:
            out.write(data)
        os.replace(kept + ".part", kept)
    prefix = root.strip("/") + "/" if root.strip("/") else ""
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.filename.startswith(prefix) and not info.is_dir():
                    rel = info.filename[len(prefix):]
                    put(dest, rel, archive.read(info), info.external_attr >> 16)
    else:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            for member in archive:
                rel = member.name[len(prefix):] if member.name.startswith(prefix) else None
                if rel is None or not rel or member.isdir():
                    continue
                if member.issym():
                    path = os.path.join(dest, rel)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    os.symlink(member.linkname, path)
                elif member.isfile():
                    put(dest, rel, archive.extractfile(member).read(), member.mode)
elif cmd == "link":
    tool, venv, bindir = args
    dist = md.distribution(tool)
    files = [str(f) for f in dist.files or []]
    exes = {f.rsplit("/", 1)[1] for f in files if f.startswith("../../../bin/")}
    exes |= {ep.name for ep in dist.entry_points if ep.group == "console_scripts"}
    for exe in sorted(exes):
        target = os.path.join("..", os.path.basename(venv), "bin", exe)
        os.symlink(target, os.path.join(bindir, exe))
"""
HELPER_B64 = base64.b64encode(_HELPER.encode()).decode()
# The node wheel's bin/ scripts look for ../lib/cli.js beside themselves: link them as the
# official tarball does (what runtimes._node_wheel does for `sandbox build`).
_NODE_LINKS = {
    "npm": "npm/bin/npm-cli.js",
    "npx": "npm/bin/npx-cli.js",
    "corepack": "corepack/dist/corepack.js",
}


class Unsupported(Exception):
    """The lock holds a node this generator has no Dockerfile equivalent for."""


@dataclass(frozen=True, kw_only=True)
class Context:
    """A docker build context: the Dockerfile and the files it COPYs (path -> bytes)."""

    dockerfile: str
    files: Mapping[str, bytes]

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "Dockerfile").write_text(self.dockerfile)
        for name, data in self.files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)


def generate(*, spec: Spec, lock: Lock, platform: str, base_image: str) -> Context:
    """The Dockerfile (and its context) equivalent to `lock`, built FROM `base_image`."""
    nodes = lock.nodes(platform)
    files: dict[str, bytes] = {}
    runtimes = [n for n in stack(nodes) if nodes[n].kind == "runtime"]
    deps = [n for n in stack(nodes) if nodes[n].kind == "deps"]
    unknown = [n for n in nodes if n.startswith("tools.") and n not in ("tools.pip", "tools.npm")]
    if unknown:
        msg = f"no Dockerfile equivalent for {', '.join(sorted(unknown))}"
        raise Unsupported(msg)
    lines = [
        f"# Generated by bench/dockerfile.py from sandbox.lock ({lock.spec_hash}).",
        f"FROM {base_image}",
        "USER root",
        _run(_system(nodes["system"])),
        f"ARG {CA_ARG}",
    ]
    env: dict[str, str] = compose_env({}, [])
    if runtimes:
        lines.append(_run(_with_ca([_runtime(nodes[n]) for n in runtimes])))
        env = compose_env({}, [_node_env(nodes[n]) for n in runtimes])
        lines.append(f"ENV PATH={env['PATH']}")
    tools: list[str] = []
    if "tools.pip" in nodes:
        tools += _pip_tools(nodes["tools.pip"])
    if "tools.npm" in nodes:
        npm = nodes["tools.npm"].inputs_as(NpmToolsInputs)
        files["tools-npm/package.json"] = managers.npm_package_json(npm.tools).encode()
        lock_json = managers.npm_package_lock(npm.tools, [write_inputs(p) for p in npm.packages])
        files["tools-npm/package-lock.json"] = lock_json.encode()
        lines.append(f"COPY tools-npm/ {NPM_PREFIX}/")
        tools.append(f"cd {NPM_PREFIX} && {_QUIET} npm ci --no-audit --no-fund --loglevel=warn")
    if tools:
        lines.append(_run(_with_ca([*tools, "rm -rf /root/.npm /root/.cache /tmp/req-*.txt"])))
    deps_steps: list[str] = []
    for name in deps:
        node_files, steps = _deps(nodes[name], spec.project_dir)
        files.update(node_files)
        prefix = deps_prefix(name)
        lines.append(f"COPY deps-{name.removeprefix('deps.')}/ {prefix}/")
        deps_steps += steps
    if deps_steps:
        lines.append(_run(_with_ca(deps_steps)))
    lines += final_lines(spec, [_node_env(nodes[n]) for n in stack(nodes)], contender="docker")
    return Context(dockerfile="\n".join(lines) + "\n", files=files)


def final_lines(spec: Spec, node_envs: list[Mapping[str, str]], *, contender: str) -> list[str]:
    """The image's last lines: ENV (what each node adds, in build order, then [image].env),
    USER, WORKDIR and the label naming the contender that built it."""
    env = compose_env({}, node_envs)
    env.update(spec.image.env)
    return [
        "ENV " + " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items())),
        f"USER {spec.image.user}",
        f"WORKDIR {spec.image.workdir}",
        f"LABEL {LABEL}={contender}",
    ]


def _run(steps: list[str]) -> str:
    return "RUN " + " \\\n && ".join(steps)


def _with_ca(steps: list[str]) -> list[str]:
    """Fetch the CA bundle first and point every tool at it; delete it in the same RUN."""
    exports = " ".join(f"{v}={CA_FILE}" for v in _CA_VARS)
    return [
        f"H=\"$(echo '{HELPER_B64}' | base64 -d)\"",
        f'if [ -n "${CA_ARG}" ]; then python3 -c "$H" ca "${CA_ARG}" {CA_FILE}'
        f" && export {exports} npm_config_cafile={CA_FILE}; fi",
        *steps,
        f"rm -f {CA_FILE}",
    ]


def _system(node: NodeLock) -> list[str]:
    system = node.inputs_as(SystemInputs)
    pins = shlex.join(f"{p.name}={p.version}" for p in system.packages)
    user, uid, workdir = system.user, system.uid, system.workdir
    return [
        "export DEBIAN_FRONTEND=noninteractive",
        UPDATE,
        f"apt-get install -y -qq --no-install-recommends {pins}",
        "apt-get clean",
        "rm -rf /var/lib/apt/lists/*",
        f"useradd --uid {uid} --user-group --create-home --shell /bin/bash {shlex.quote(user)}",
        f"mkdir -p {shlex.quote(workdir)}",
        f"chown {uid}:{uid} {shlex.quote(workdir)}",
    ]


def _runtime(node: NodeLock) -> str:
    inputs = node.inputs_as(RuntimeInputs)
    if inputs.provider not in (Provider.PYPI, Provider.OFFICIAL) or inputs.runtime == "rust":
        msg = f"{node.name}: no Dockerfile equivalent for provider {inputs.provider.value!r}"
        raise Unsupported(msg)
    home = f"/opt/sandbox/runtime/{inputs.runtime}"
    steps = [get_step(inputs.url, inputs.sha256, inputs.format, inputs.root, home)]
    if inputs.provider is Provider.PYPI:
        steps.append(f"rm -f {home}/*.py {home}/py.typed")
    if inputs.runtime == "node" and inputs.provider is Provider.PYPI:
        for command, script in _NODE_LINKS.items():
            target = f"../lib/node_modules/{script}"
            steps.append(
                f"if [ -f {home}/lib/node_modules/{script} ]; then "
                f"ln -sf {target} {home}/bin/{command}; fi"
            )
    return " && ".join(steps)


def get_step(url: str, sha256: str, fmt: str, root: str, dest: str, keep: str = "") -> str:
    fmt = "zip" if fmt == "zip" else "tar"
    args = shlex.join([url, sha256, fmt, root, dest, *([keep] if keep else [])])
    return f'python3 -c "$H" get {args}'


def _pip_tools(node: NodeLock) -> list[str]:
    steps = [f"mkdir -p {PIP_PREFIX}/bin"]
    for tool, locked in sorted(node.inputs_as(PipToolsInputs).tools.items()):
        venv, req = f"{PIP_PREFIX}/{tool}", f"/tmp/req-{tool}.txt"
        pins = [write_inputs(pin) for pin in locked.packages]
        lines = managers.pip_requirements(pins).splitlines()
        steps += [
            f"printf '%s\\n' {shlex.join(lines)} > {req}",
            f"python3 -m venv {venv}",
            f"{venv}/bin/pip install --quiet --no-cache-dir --disable-pip-version-check "
            f"--no-deps --require-hashes -r {req}",
            f'{venv}/bin/python -c "$H" link {tool} {venv} {PIP_PREFIX}/bin',
        ]
    return steps


def deps_prefix(name: str) -> str:
    return f"/opt/sandbox/deps/{name.removeprefix('deps.')}"


def deps_files(node: NodeLock, project_dir: Path) -> dict[str, bytes]:
    """A pnpm install-mode node's project files, checked against the lock, by context path."""
    inputs = node.inputs_as(DepsInputs)
    if inputs.manager is not DepManager.PNPM or inputs.mode is not DepMode.INSTALL:
        msg = f"{node.name}: only pnpm in install mode has a Dockerfile equivalent here"
        raise Unsupported(msg)
    short = node.name.removeprefix("deps.")
    files: dict[str, bytes] = {}
    for filename, sha in sorted(inputs.files.items()):
        data = (project_dir / inputs.path / filename).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha:
            msg = f"{node.name}: {filename} changed since sandbox.lock was made; lock again"
            raise Unsupported(msg)
        files[f"deps-{short}/{filename}"] = data
    return files


def _deps(node: NodeLock, project_dir: Path) -> tuple[dict[str, bytes], list[str]]:
    """The project's files (checked against the lock) and the steps of a pnpm install."""
    files = deps_files(node, project_dir)
    pin = node.inputs_as(DepsInputs).installer
    if pin is None:
        msg = f"{node.name}: the lock pins no pnpm; run `sandbox lock`"
        raise Unsupported(msg)
    prefix = deps_prefix(node.name)
    wrapper = f"printf '#!/bin/sh\\nexec node %s \"$@\"\\n' {prefix}/pnpm/{pin.bin}"
    steps = [
        get_step(pin.url, pin.sha256, "tgz", "package", f"{prefix}/pnpm"),
        f"mkdir -p {prefix}/bin",
        f"{wrapper} > {prefix}/bin/pnpm",
        f"chmod 755 {prefix}/bin/pnpm",
        f"cd {prefix} && {_QUIET} {prefix}/bin/pnpm install --frozen-lockfile "
        "--package-import-method=copy --store-dir /tmp/pnpm-store",
        f"chmod -R a+rX {prefix}",
        "rm -rf /tmp/pnpm-store /root/.cache /root/.local/share/pnpm /root/.npm",
    ]
    return files, steps


def _node_env(node: NodeLock) -> dict[str, str]:
    """What each node adds to the image's env, as the recipes of `sandbox build` do."""
    runtime_inputs = KINDS.typed(node)
    if isinstance(runtime_inputs, RuntimeInputs) and runtime_inputs.provider is not Provider.APT:
        runtime = runtime_inputs.runtime
        home = f"/opt/sandbox/runtime/{runtime}"
        java = {"JAVA_HOME": home} if runtime == "java" else {}
        return {"PATH": f"{home}/bin", **java}
    if node.name == "tools.pip":
        return {"PATH": f"{PIP_PREFIX}/bin"}
    if node.name == "tools.npm":
        return {"PATH": f"{NPM_PREFIX}/node_modules/.bin"}
    if node.kind == "deps":
        prefix = deps_prefix(node.name)
        return {
            "NODE_PATH": f"{prefix}/node_modules",
            "PATH": f"{prefix}/node_modules/.bin:{prefix}/bin",
        }
    return {}
