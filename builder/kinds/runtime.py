"""Runtime nodes (`[runtimes]` with the `official` or `pypi` provider), made on the host.

A runtime is a checked download unpacked under its prefix: the archive's sha256 comes from the
lock (and, at lock time, from the publisher's own checksums, `resolve/runtimes/`), so the layer
needs no container and no network tool inside the image. A runtime with `provider = "apt"` is
no node: its packages join the system layer's closure.

Recipe versions: runtime/1; runtime/2 leaves node's OpenSSL headers of other platforms out
(`resolve/runtimes/headers`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

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
from builder.kinds.layer import host_layer, listed_layer
from builder.kinds.purls import package, pep503, purl
from builder.kinds.rules import RUNTIME_COMMANDS
from builder.kinds.system import System
from builder.model.inputs import RuntimeInputs
from builder.model.lockfile import NodeKind, NodeLock
from builder.model.spec import Provider, Spec
from builder.resolve import runtimes


class Runtime(KindBase):
    """`runtime.<name>`: one language runtime from its publisher (or PyPI)."""

    name = "runtime"
    stack = NodeKind.RUNTIME
    recipe = "runtime/2"
    previous = ("runtime/1",)
    inputs = RuntimeInputs
    many = True

    def declare(self, spec: Spec) -> list[Declared]:
        return [
            Declared(name=f"{self.name}.{runtime}", needs=(System.name,))
            for runtime in sorted(_layered(spec))
        ]

    def lock(self, ctx: LockContext, name: str) -> Inputs:
        runtime = next(r for r in ctx.spec.runtimes if f"{self.name}.{r.name}" == name)
        requested = {
            "provider": runtime.provider,
            "version": runtime.version,
            "mirror": runtime.mirror or "",
        }
        old = ctx.kept(name, requested, [runtime.name])
        if old is not None:
            return old
        ctx.progress.say(f"  resolving {name} ({runtime.version}, {runtime.provider}) ...")
        resolved = runtimes.resolve_runtime(
            runtime.name,
            runtime.version,
            runtime.provider,
            mirror=runtime.mirror,
            platform=ctx.platform,
            downloads=ctx.cache.downloads,
        )
        ctx.progress.say(f"  resolved  {name} {resolved['version']}")
        return {**resolved, "requested": requested}

    def build(self, ctx: StepContext, node: NodeLock) -> StepResult:
        inputs = node.inputs_as(RuntimeInputs)
        archive = runtimes.runtime_archive(inputs, downloads=ctx.cache.downloads)
        with runtimes.runtime_tree(inputs, archive, platform=ctx.platform) as tree:
            if tree is not None:  # a wheel: its layer is written from the listing
                layer = listed_layer(ctx, node, tree)
                return StepResult(layers=[layer], env=runtimes.runtime_env(inputs))
        return host_layer(
            ctx,
            node,
            lambda dest: runtimes.layout_runtime(inputs, archive, dest, platform=ctx.platform),
        )

    def needs_stage(self, node: NodeLock) -> bool:
        """Never: the checked archive is unpacked on the host."""
        return False

    def pins(self, node: NodeLock, distro: Distro) -> Iterator[tuple[str, dict[str, Any]]]:
        inputs = node.inputs_as(RuntimeInputs)
        url = inputs.url
        if inputs.provider is Provider.PYPI:  # the runtime is a wheel's payload
            project = urlsplit(url).path.rsplit("/", 1)[-1].split("-", 1)[0]
            ident = purl("pypi", pep503(project), inputs.version)
        else:
            ident = purl("generic", inputs.runtime, inputs.version, download_url=url)
        yield (
            inputs.runtime,
            package(
                name=inputs.runtime,
                version=inputs.version,
                purl=ident,
                kind="application",
                checksums=(("SHA256", inputs.sha256),),
                url=url,
                note=f"runtime {inputs.runtime} from {inputs.provider.value}",
            ),
        )

    def probes(self, node: NodeLock, spec: Spec) -> Probes:
        runtime = node.name.removeprefix(f"{self.name}.")
        return Probes(run=[Probe(check=node.name, argv=RUNTIME_COMMANDS[runtime])])


def _layered(spec: Spec) -> set[str]:
    """The runtimes that are layers of their own (not Debian's packages)."""
    return {r.name for r in spec.runtimes if r.provider != Provider.APT}


def runtime_node(spec: Spec, runtime: str) -> tuple[str, ...]:
    """What a node running on `runtime` (python, node) needs: its layer, else the system's
    (Debian's package, or the base's own program)."""
    return (f"{Runtime.name}.{runtime}",) if runtime in _layered(spec) else (System.name,)
