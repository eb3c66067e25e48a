"""How each node kind is built into layers (the "recipes" whose versions `keys.py` holds).

A recipe gets the node's locked inputs and a `StepContext`, and returns the normalized layer
files it produced. It never resolves anything: every version it installs comes from the lock,
and it checks that what got installed is exactly what the lock says.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder import proc
from builder.cache import Cache
from builder.engine import Engine, kept_container, require_success
from builder.errors import BuildError
from builder.layers import (
    LayerFile,
    layer_file,
    layers_of_saved_image,
    normalize_tar,
    tar_directory,
    top_layer_of_saved_image,
)
from builder.lockfile import NodeLock
from builder.resolve.apt import APT_ENV, UPDATE
from builder.resolve.debian import parse_stanzas


@dataclass(frozen=True, kw_only=True)
class StepContext:
    cache: Cache
    engine: Callable[[], Engine]
    platform: str
    epoch: int
    stage: Callable[[str], str]  # node name -> image ID of its ancestors' layers stacked


@dataclass(frozen=True, kw_only=True)
class StepResult:
    layers: list[LayerFile]
    env: dict[str, str]


def build(ctx: StepContext, node: NodeLock) -> StepResult:
    if node.kind == "base":
        if "bootstrap" in node.inputs:
            return _bootstrap(ctx, node)
        return _base_image(ctx, node)
    if node.kind == "system":
        return _system(ctx, node)
    msg = f"{node.name}: building {node.kind} layers is not implemented yet"
    raise BuildError(msg)


def _bootstrap(ctx: StepContext, node: NodeLock) -> StepResult:
    boot = node.inputs["bootstrap"]
    work = ctx.cache.scratch("bootstrap-")
    try:
        root = work / "root"
        proc.run(
            [
                "debootstrap",
                f"--variant={boot['variant']}",
                f"--arch={ctx.platform.split('/')[1]}",
                boot["suite"],
                str(root),
                boot["mirror"],
            ],
            error=BuildError,
            what=f"debootstrap of {boot['suite']}",
            log=ctx.cache.log_path(node.name),
        )
        _verify_installed(
            _dpkg_status(root / "var/lib/dpkg/status"),
            {p["name"]: p["version"] for p in node.inputs["packages"]},
            node=node.name,
            exact=True,
        )
        (root / "etc/apt/sources.list").write_text(sources_list(boot["mirror"], boot["suite"]))
        layer = tar_directory(root, work / "layer.tar", epoch=ctx.epoch)
        return StepResult(layers=[_store(ctx.cache, layer)], env={})
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sources_list(mirror: str, suite: str) -> str:
    """The base's apt sources: the suite, its updates and, on Debian's mirror, security."""
    lines = [f"deb {mirror} {suite} main", f"deb {mirror} {suite}-updates main"]
    if mirror.rstrip("/") == "http://deb.debian.org/debian":
        lines.append(f"deb http://deb.debian.org/debian-security {suite}-security main")
    return "\n".join(lines) + "\n"


def _base_image(ctx: StepContext, node: NodeLock) -> StepResult:
    engine = ctx.engine()
    ref = node.inputs["pinned"]
    if engine.image_id(ref) is None:
        if ref.startswith("sha256:"):
            msg = (
                f"base image {node.inputs['image']} ({ref}) is no longer present locally. "
                "Load it again, or run `sandbox lock --update base`"
            )
            raise BuildError(msg)
        engine.pull(ref, ctx.platform)
    work = ctx.cache.scratch("base-image-")
    try:
        engine.save(ref, work / "image.tar")
        raw = layers_of_saved_image(work / "image.tar", work)
        layers = [_store(ctx.cache, layer_file(path)) for path in raw]
        env = dict(e.split("=", 1) for e in engine.image_env(ref) if "=" in e)
        return StepResult(layers=layers, env=env)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _system(ctx: StepContext, node: NodeLock) -> StepResult:
    engine = ctx.engine()
    packages = {p["name"]: p["version"] for p in node.inputs["packages"]}
    user, uid, workdir = node.inputs["user"], node.inputs["uid"], node.inputs["workdir"]
    install = ""
    if packages:
        pins = shlex.join(f"{n}={v}" for n, v in sorted(packages.items()))
        install = f"""{UPDATE}
apt-get install -y -qq --no-install-recommends {pins}
apt-get clean
rm -rf /var/lib/apt/lists/*
"""
    script = f"""dpkg-query -W -f='${{Package}}=${{Version}}\\n' | sort > /tmp/before
{install}dpkg-query -W -f='${{Package}}=${{Version}}\\n' | sort > /tmp/after
echo @@installed
comm -13 /tmp/before /tmp/after
echo @@end
if ! getent passwd {shlex.quote(user)} >/dev/null; then
  useradd --uid {uid} --user-group --create-home --shell /bin/bash {shlex.quote(user)}
fi
mkdir -p {shlex.quote(workdir)}
chown {uid}:{uid} {shlex.quote(workdir)}
"""
    log = ctx.cache.log_path(node.name)
    env = {**APT_ENV, "SOURCE_DATE_EPOCH": str(ctx.epoch)}
    result = engine.run(
        image=ctx.stage(node.name), script=script, log=log, env=env, mounts=[], network=True
    )
    with kept_container(engine, result):
        text = log.read_text(errors="replace")
        if "was not found" in text or "Unable to locate package" in text:
            msg = (
                f"system: a pinned package version is gone from the mirror ({_missing(text)}). "
                f"Run `sandbox lock --update system` to re-pin. Full log: {log}"
            )
            raise BuildError(msg)
        require_success(result, what="system: apt-get install", log=log)
        installed = text.split("@@installed", 1)[1].split("@@end", 1)[0]
        got = dict(line.split("=", 1) for line in installed.split() if "=" in line)
        _verify_installed(got, packages, node=node.name, exact=True)
        layer = _capture(ctx, engine, result.container, node)
    return StepResult(layers=[layer], env={})


def _capture(ctx: StepContext, engine: Engine, container: str, node: NodeLock) -> LayerFile:
    """Commit the step's container and keep its diff as a normalized layer."""
    work = ctx.cache.scratch(f"{node.name}-")
    committed = engine.commit(container)
    try:
        engine.save(committed, work / "image.tar")
        raw = top_layer_of_saved_image(work / "image.tar", work / "diff.tar")
        (work / "image.tar").unlink()
        prefix = None if node.kind in ("base", "system") else "/opt/sandbox/"
        layer = normalize_tar(
            raw, work / "layer.tar", epoch=ctx.epoch, prefix=prefix, node=node.name
        )
        return _store(ctx.cache, layer)
    finally:
        engine.remove_image(committed)
        shutil.rmtree(work, ignore_errors=True)


def _verify_installed(
    got: dict[str, str], locked: dict[str, str], *, node: str, exact: bool
) -> None:
    wrong = [
        f"{n} {got.get(n, 'missing')} (lock: {v})" for n, v in locked.items() if got.get(n) != v
    ]
    extra = sorted(set(got) - set(locked)) if exact else []
    if wrong or extra:
        parts = wrong[:5] + [f"{n} (not in the lock)" for n in extra[:5]]
        msg = (
            f"{node}: installed packages differ from sandbox.lock: {'; '.join(parts)}. The "
            f"mirror has moved on since the lock was made; run `sandbox lock --update {node}`"
        )
        raise BuildError(msg)


def _dpkg_status(path: Path) -> dict[str, str]:
    return {
        s["Package"]: s["Version"]
        for s in parse_stanzas(path.read_text())
        if s.get("Status", "").endswith(" installed")
    }


def _missing(log_text: str) -> str:
    for line in log_text.splitlines():
        if "was not found" in line or "Unable to locate" in line:
            return line.strip().removeprefix("E: ")
    return "see the log"


def _store(cache: Cache, layer: LayerFile) -> LayerFile:
    return LayerFile(
        diff_id=layer.diff_id, path=cache.store_layer(layer.path, layer.diff_id), size=layer.size
    )
