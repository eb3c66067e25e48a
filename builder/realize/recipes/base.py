"""The base layer: a debootstrapped rootfs, or the layers of a pinned base image."""

from __future__ import annotations

import os
import shutil

from builder.core import limits, proc, space
from builder.core.errors import BuildError
from builder.engine.step import StepContext
from builder.model.inherit import base_env
from builder.model.inputs import BaseInputs, BootstrapBase, ImageBase
from builder.model.lockfile import NodeLock
from builder.realize.recipes.common import StepResult, dpkg_status, store, verify_installed
from builder.store.diffs import layers_of_saved_image
from builder.store.layers import layer_file, tar_directory


def build_base(ctx: StepContext, node: NodeLock) -> StepResult:
    inputs = node.inputs_as(BaseInputs)
    if isinstance(inputs, BootstrapBase):
        return _bootstrap(ctx, node, inputs)
    assert isinstance(inputs, ImageBase)
    return _base_image(ctx, node, inputs)


def _bootstrap(ctx: StepContext, node: NodeLock, inputs: BootstrapBase) -> StepResult:
    boot = inputs.bootstrap
    if os.geteuid() != 0:
        msg = (
            f"base: [base] bootstrap runs debootstrap on this machine, which needs root, and "
            f"this client runs as uid {os.geteuid()}. Build this lock once as root (`sudo "
            f"sandbox build`), or set [base] image = an image of {boot.suite} that the "
            "engine has (a root build's image ID serves) and run `sandbox lock`"
        )
        raise BuildError(msg)
    work = ctx.cache.scratch("bootstrap-")
    try:
        root = work / "root"
        proc.run(
            [
                "debootstrap",
                f"--variant={boot.variant}",
                f"--arch={ctx.platform.split('/')[1]}",
                boot.suite,
                str(root),
                boot.mirror,
            ],
            error=BuildError,
            what=f"base: debootstrap of {boot.suite}",
            log=ctx.cache.log_path(node.name),
            # pwconv (passwd's postinst) writes the day into /etc/shadow: shadow 4.9+ takes
            # it from SOURCE_DATE_EPOCH; store/dated.py clamps it for those that do not.
            env={"WGETRC": str(limits.write_wgetrc(work)), "SOURCE_DATE_EPOCH": str(ctx.epoch)},
            hint=limits.network_hint(),
        )
        verify_installed(
            dpkg_status(root / "var/lib/dpkg/status"),
            {p.name: p.version for p in inputs.packages},
            node=node.name,
        )
        (root / "etc/apt/sources.list").write_text(sources_list(boot.mirror, boot.suite))
        layer = tar_directory(root, work / "layer.tar", epoch=ctx.epoch, keep_owners=True)
        return StepResult(layers=[store(ctx.cache, layer)], env={})
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sources_list(mirror: str, suite: str) -> str:
    """The base's apt sources: the suite, its updates and, on Debian's mirror, security."""
    lines = [f"deb {mirror} {suite} main", f"deb {mirror} {suite}-updates main"]
    if mirror.rstrip("/") == "http://deb.debian.org/debian":
        lines.append(f"deb http://deb.debian.org/debian-security {suite}-security main")
    return "\n".join(lines) + "\n"


def _base_image(ctx: StepContext, node: NodeLock, inputs: ImageBase) -> StepResult:
    engine = ctx.engine()
    ref = inputs.pinned
    if engine.image_id(ref) is None:
        if ref.startswith("sha256:"):
            msg = (
                f"base image {inputs.image} ({ref}) is no longer present locally. "
                "Load it again, or run `sandbox lock --update base`"
            )
            raise BuildError(msg)
        engine.pull(ref, ctx.platform)
    work = ctx.cache.scratch("base-image-")
    try:
        size = int(engine.inspect(ref).get("Size") or 0)
        with space.room_for(work / "image.tar", what=f"base: saving {ref}", need=size):
            engine.save(ref, work / "image.tar")
        raw = layers_of_saved_image(work / "image.tar", work)
        layers = [store(ctx.cache, layer_file(path)) for path in raw]
        if inputs.config is not None:  # as locked: the build needs nothing but the lock
            env = base_env(inputs.config)
        else:
            env = dict(e.split("=", 1) for e in engine.image_env(ref) if "=" in e)
        return StepResult(layers=layers, env=env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
