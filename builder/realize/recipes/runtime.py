"""Runtime layers (`official` and `pypi` providers) and `[tools.bin]` layers, made on the host.

Both are a checked download unpacked under the node's prefix: the archive's sha256 comes from
the lock (and, at lock time, from the publisher's own checksums), so the layer needs no
container and no network tool inside the image. Credentials for private URLs are read here,
on the host, and never reach a layer.
"""

from __future__ import annotations

from builder.engine.step import StepContext
from builder.lock import bins, runtimes
from builder.model.inputs import RuntimeInputs
from builder.model.lockfile import NodeLock
from builder.model.toolinputs import BinToolInputs
from builder.realize.recipes.common import StepResult, host_layer


def build_runtime(ctx: StepContext, node: NodeLock) -> StepResult:
    inputs = node.inputs_as(RuntimeInputs)
    archive = runtimes.runtime_archive(inputs, downloads=ctx.cache.downloads)
    return host_layer(ctx, node, lambda folder: runtimes.layout_runtime(inputs, archive, folder))


def build_bin(ctx: StepContext, node: NodeLock) -> StepResult:
    inputs = node.inputs_as(BinToolInputs)
    archive = bins.bin_archive(
        inputs,
        project_dir=ctx.project_dir,
        downloads=ctx.cache.downloads,
        auth_env=inputs.requested.auth_env or None,
    )
    return host_layer(ctx, node, lambda folder: bins.layout_bin(inputs, archive, folder))
