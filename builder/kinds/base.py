"""The base node: a debootstrapped rootfs, or the layers of a pinned base image.

Locked by `resolve/base.py` (debootstrap's package set, or the image's digest) and, for an
image, `resolve/image.py` (what the image has: config, users, programs, packages).

A debootstrapped base is slim, as Debian's own slim images are (`kinds/slim.py`): what dpkg
would leave out under the slim config (documentation but copyright files, man and info pages,
translations) is deleted from the root before it is packed, and the config is written into it,
so every later apt install (the system step's, the agent's) is slim too. `[system] docs = true`
keeps all of it, locked as the base's `docs` (written only when true, as the system node's: a
lock without it keeps its bytes). An image base is taken as it is.

Recipe versions:
- base/2: writes the day of the last password change in /etc/shadow as the lock's epoch's
  day, not the build's (store/dated.py): the same lock gave a different base on another day.
- base/3: a debootstrapped base is slim unless `docs` (bookworm's: 77.1 MB, from 120.6 MB).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from typing import Any

from builder.core import limits, proc, space
from builder.core.errors import BuildError, ResolutionError
from builder.engine.emulation import require_emulation
from builder.engine.step import StepContext
from builder.kinds import slim
from builder.kinds.kind import Declared, Distro, Inputs, KindBase, LockContext, StepResult
from builder.kinds.layer import dpkg_status, store, verify_installed
from builder.kinds.purls import debs, package, purl
from builder.kinds.rules import answers, base_request, describe_base
from builder.model.inherit import base_env
from builder.model.inputs import BaseInputs, BootstrapBase, ImageBase
from builder.model.lockfile import NodeKind, NodeLock
from builder.model.spec import Spec
from builder.resolve.base import resolve_base
from builder.resolve.image import describe_image
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
        if not inputs.docs:
            slim.trim(root)
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


def held_images(nodes: Mapping[str, NodeLock]) -> tuple[str, ...]:
    """The image an image base was saved from (its pin), which the engine holds: its layers
    are the base node's, so an image loaded on them sends only the layers above (a 1 GB
    orchestrator image is not written to the engine again); none for a bootstrapped base."""
    node = nodes.get(Base.name)
    if node is None or "bootstrap" in node.inputs:
        return ()
    pinned = node.inputs.get("pinned")
    return (pinned,) if isinstance(pinned, str) else ()


class Base(KindBase):
    """The node every image starts from: `[base]`."""

    name = "base"
    stack = NodeKind.BASE
    recipe = "base/3"
    previous = ("base/2", "base/1")
    inputs = BaseInputs

    def declare(self, spec: Spec) -> list[Declared]:
        return [Declared(name=self.name, needs=())]

    def prefix(self, node: str) -> str | None:
        return None

    def lock(self, ctx: LockContext, name: str) -> Inputs:
        old = ctx.previous.get(name)
        request = base_request(ctx.spec)
        # Not part of the request: it changes the layer, not debootstrap's package set.
        kept_docs = ctx.spec.base.bootstrap is not None and ctx.spec.system_docs
        docs: dict[str, Any] = {"docs": True} if kept_docs else {}
        if old and answers(old.inputs, request) and not ctx.wanted(name, []):
            if "bootstrap" in old.inputs or "config" in old.inputs:
                ctx.progress.say(f"  kept      base ({describe_base(old.inputs)})")
                return {**{k: v for k, v in old.inputs.items() if k != "docs"}, **docs}
            # Locked before lock recorded what an image base has: keep its pin, read the rest.
            pinned = {k: old.inputs[k] for k in ("image", "pinned", "epoch")}
            return _described(ctx, pinned)
        ctx.progress.say("  resolving base ...")
        inputs = resolve_base(
            ctx.spec.base,
            platform=ctx.platform,
            engine=None if ctx.spec.base.bootstrap else ctx.engine(),
            foreign=ctx.foreign,
        )
        return _described(ctx, inputs) if ctx.spec.base.image else _resolved(ctx, inputs | docs)

    def build(self, ctx: StepContext, node: NodeLock) -> StepResult:
        return build_base(ctx, node)

    def pins(self, node: NodeLock, distro: Distro) -> Iterator[tuple[str, dict[str, Any]]]:
        inputs = node.inputs_as(BaseInputs)
        if isinstance(inputs, ImageBase):  # a base image, pinned by digest or local image ID
            yield _image(inputs)
        yield from debs(inputs.packages or (), distro)


def distro_of(base: BaseInputs, platform: str) -> Distro:
    """Where a base's Debian packages come from; an image base's distribution is what its
    os-release said at lock (resolve/image.py)."""
    arch = platform.split("/")[-1]
    if isinstance(base, BootstrapBase):
        return Distro(arch=arch, suite=base.bootstrap.suite)
    if isinstance(base, ImageBase) and base.os is not None:
        return Distro(
            arch=arch, suite=base.os.get("codename", ""), vendor=base.os.get("id", "debian")
        )
    return Distro(arch=arch)


def _described(ctx: LockContext, pinned: Mapping[str, Any]) -> Inputs:
    """An image base's inputs: its pin and what the image has (resolve/image.py).

    Another platform's image is probed under emulation: one short script, the only step of a
    lock that runs that platform's programs.
    """
    if ctx.foreign:
        what = f"reading {ctx.platform}'s base image {pinned['image']}"
        require_emulation(ctx.platform, what=what, error=ResolutionError)
    described = describe_image(
        image=str(pinned["image"]),
        pinned=str(pinned["pinned"]),
        platform=ctx.platform,
        engine=ctx.engine(),
        log=ctx.cache.log_path("base"),
    )
    return _resolved(ctx, {**pinned, **described})


def _resolved(ctx: LockContext, inputs: Mapping[str, Any]) -> Inputs:
    ctx.progress.say(f"  resolved  base ({describe_base(inputs)})")
    return inputs


def _image(inputs: ImageBase) -> tuple[str, dict[str, Any]]:
    """A base image: by manifest digest from its registry, or by the local image ID."""
    reference, _, digest = inputs.pinned.rpartition("@")
    repo = reference or inputs.image.rsplit(":", 1)[0]
    return (
        "image",
        package(
            name=repo,
            version=digest,
            purl=purl("oci", repo.rsplit("/", 1)[-1], digest, repository_url=reference),
            kind="container",
            checksums=(("SHA256", digest.removeprefix("sha256:")),),
            note=f"base image {inputs.image}",
        ),
    )
