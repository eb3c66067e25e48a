"""`tools.bin.<name>` nodes: one downloaded executable (or an archive holding it), on the host.

Pinned by sha256 at lock time (`resolve/bins.py`), unpacked under the node's prefix at build
time; credentials for private URLs are read on the host and never reach a layer.

Recipe versions: the tool kinds' (`layer.TOOLS_RECIPE`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from builder.engine.step import StepContext
from builder.kinds.kind import (
    Declared,
    Distro,
    Inputs,
    KindBase,
    LockContext,
    Probe,
    Probes,
    StepResult,
)
from builder.kinds.layer import TOOLS_PREVIOUS, TOOLS_RECIPE, host_layer
from builder.kinds.purls import package, purl
from builder.kinds.system import System
from builder.model.lockfile import NodeKind, NodeLock
from builder.model.spec import Spec
from builder.model.toolinputs import BinToolInputs
from builder.resolve import bins


class BinTools(KindBase):
    """`[tools.bin.<name>]`: one executable from a URL or a project file."""

    name = "tools.bin"
    stack = NodeKind.TOOLS
    recipe = TOOLS_RECIPE
    previous = TOOLS_PREVIOUS
    inputs = BinToolInputs
    many = True

    def declare(self, spec: Spec) -> list[Declared]:
        return [
            Declared(name=f"{self.name}.{t.name}", needs=(System.name,)) for t in spec.tools.bin
        ]

    def lock(self, ctx: LockContext, name: str) -> Inputs:
        tool = next(t for t in ctx.spec.tools.bin if f"{self.name}.{t.name}" == name)
        requested = {
            "version": tool.version,
            "url": tool.url or "",
            "path": tool.path or "",
            "bin": tool.binary or tool.name,
            "auth_env": tool.auth_env or "",
            "file_sha256": tool.file_sha256 or "",
        }
        old = ctx.kept(name, requested, [tool.name])
        if old is not None:
            return old
        resolved = bins.resolve_bin(
            tool,
            project_dir=ctx.spec.project_dir,
            platform=ctx.platform,
            downloads=ctx.cache.downloads,
        )
        ctx.progress.say(f"  resolved  {name} {tool.version}")
        return {**resolved, "requested": requested}

    def build(self, ctx: StepContext, node: NodeLock) -> StepResult:
        inputs = node.inputs_as(BinToolInputs)
        archive = bins.bin_archive(
            inputs,
            project_dir=ctx.project_dir,
            downloads=ctx.cache.downloads,
            auth_env=inputs.requested.auth_env or None,
        )
        return host_layer(ctx, node, lambda dest: bins.layout_bin(inputs, archive, dest))

    def needs_stage(self, node: NodeLock) -> bool:
        """Never: the checked archive is unpacked on the host."""
        return False

    def pins(self, node: NodeLock, distro: Distro) -> Iterator[tuple[str, dict[str, Any]]]:
        inputs = node.inputs_as(BinToolInputs)
        url = inputs.url or ""
        where = url or (inputs.path if inputs.path is not None else "?")
        yield (
            inputs.name,
            package(
                name=inputs.name,
                version=inputs.version,
                purl=purl("generic", inputs.name, inputs.version, download_url=url),
                kind="application",
                checksums=(("SHA256", inputs.sha256),),
                url=url,
                note=f"binary tool from {where}",
            ),
        )

    def probes(self, node: NodeLock, spec: Spec) -> Probes:
        tool = next(t for t in spec.tools.bin if f"{self.name}.{t.name}" == node.name)
        return Probes(run=[Probe(check=node.name, argv=(tool.binary or tool.name,), tool=True)])
