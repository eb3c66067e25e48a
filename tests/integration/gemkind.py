"""A node kind no module of builder/ knows: `[tools.gem]`, registered by the tests alone.

Its table lists gem names; lock pins each to a version and a digest; its layer is files it
writes on the host (one executable per gem under its prefix); it lists its pins for the SBOM
and asks `check` to run each executable. `python -m tests.integration.gemkind ARGS` is the
`sandbox` command with this kind registered: what a plugin author would ship.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.core.tomlread import Table
from builder.engine.step import StepContext
from builder.kinds import KINDS
from builder.kinds.kind import (
    Declared,
    Distro,
    Inputs,
    KindBase,
    LockContext,
    Probe,
    Probes,
    StepResult,
    prefix_of,
)
from builder.kinds.layer import host_layer
from builder.kinds.purls import purl
from builder.model.lockfile import NodeKind, NodeLock
from builder.model.spec import Spec

VERSION = "1.0.0"


@dataclass(frozen=True, kw_only=True)
class GemPin:
    name: str
    version: str
    sha256: str


@dataclass(frozen=True, kw_only=True)
class GemInputs:
    gems: tuple[GemPin, ...]


class Gems(KindBase):
    """`[tools.gem] gems = [...]`: one executable per gem, answering `--version`."""

    name = "tools.gem"
    stack = NodeKind.TOOLS
    recipe = "gem/1"
    inputs = GemInputs
    table = "tools.gem"

    def read(self, table: Table, project: Path) -> Any:
        table.check_keys(["gems"])
        return {"gems": list(table.str_list("gems"))}

    def declare(self, spec: Spec) -> list[Declared]:
        if self.name not in spec.declared:
            return []
        return [Declared(name=self.name, needs=("system",))]

    def lock(self, ctx: LockContext, name: str) -> Inputs:
        gems = ctx.spec.declared[self.name]["gems"]
        ctx.progress.say(f"  resolved  {name} ({len(gems)} gems)")
        return {"gems": [{"name": g, "version": VERSION, "sha256": _digest(g)} for g in gems]}

    def build(self, ctx: StepContext, node: NodeLock) -> StepResult:
        gems = node.inputs_as(GemInputs).gems

        def fill(folder: Path) -> dict[str, str]:
            (folder / "bin").mkdir(parents=True)
            for gem in gems:
                exe = folder / "bin" / gem.name
                exe.write_text(f"#!/bin/sh\necho {gem.name} {gem.version}\n")
                exe.chmod(0o755)
            return {"PATH": prefix_of(node.name) + "bin"}

        return host_layer(ctx, node, fill)

    def pins(self, node: NodeLock, distro: Distro) -> Iterator[tuple[str, dict[str, Any]]]:
        for gem in node.inputs_as(GemInputs).gems:
            yield (
                gem.name,
                {
                    "name": gem.name,
                    "version": gem.version,
                    "purl": purl("gem", gem.name, gem.version),
                    "kind": "library",
                    "checksums": (("SHA256", gem.sha256),),
                },
            )

    def probes(self, node: NodeLock, spec: Spec) -> Probes:
        gems = node.inputs_as(GemInputs).gems
        return Probes(
            run=[Probe(check=f"{self.name} {g.name}", argv=(g.name,), tool=True) for g in gems]
        )


def _digest(name: str) -> str:
    return hashlib.sha256(f"{name} {VERSION}".encode()).hexdigest()


if __name__ == "__main__":
    from builder.cli.entry import main

    KINDS.register(Gems())
    main()
