"""The node kinds: one module per kind, one registry listing them (`KINDS`).

Each kind (`kind.Kind`) says which nodes a spec declares, how one is locked, built, listed
in the SBOM and checked, and the recipe version its keys hash: base, system, runtime
(`runtime.<name>`), tools.pip, tools.npm, tools.bin (`tools.bin.<name>`) and deps
(`deps.<name>`). Locking, building, the SBOM and `check` loop over `KINDS`; a new kind is one
module and one `KINDS.register(...)`. `layer` holds how layers are captured, `purls` the
package URLs, `rules` what lock checks of resolvers' answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from builder.core.errors import LockError
from builder.kinds.base import Base, distro_of
from builder.kinds.bin_tools import BinTools
from builder.kinds.deps import Deps
from builder.kinds.kind import Distro, Kind
from builder.kinds.npm import NpmTools
from builder.kinds.pip import PipTools
from builder.kinds.runtime import Runtime
from builder.kinds.system import System
from builder.model import tables
from builder.model.fields import FIX
from builder.model.graph import LayerGraph, Node
from builder.model.inputs import BaseInputs, SystemInputs
from builder.model.lockfile import NodeLock, stack
from builder.model.spec import Spec

__all__ = ["KINDS", "Kind", "Registry"]


class Registry:
    """The kinds this sandbox-builder knows, in the order their nodes are declared."""

    def __init__(self, kinds: Iterable[Kind]) -> None:
        self._kinds = list(kinds)

    def __iter__(self) -> Iterator[Kind]:
        return iter(list(self._kinds))

    def register(self, kind: Kind) -> None:
        """Add `kind` (after the others; its name must be new), and its sandbox.toml table."""
        if any(k.name == kind.name for k in self._kinds):
            msg = f"a node kind named {kind.name!r} is registered already"
            raise ValueError(msg)
        self._kinds.append(kind)
        if kind.table is not None:
            tables.register(kind.table, kind.read)

    def unregister(self, kind: Kind) -> None:
        self._kinds.remove(kind)
        if kind.table is not None:
            tables.unregister(kind.table)

    def of(self, node: str) -> Kind:
        """The kind of node `node`; a LockError when none owns it."""
        for kind in self._kinds:
            if kind.owns(node):
                return kind
        known = ", ".join(k.name for k in self._kinds)
        msg = (
            f"sandbox.lock: node {node!r} is of no kind this sandbox-builder knows ({known}). {FIX}"
        )
        raise LockError(msg)

    def recipes(self, node: NodeLock) -> tuple[str, tuple[str, ...]]:
        """The recipe version node `node`'s key hashes now, and the earlier ones."""
        kind = self.of(node.name)
        return kind.recipe, kind.previous

    def typed(self, node: NodeLock, where: str = "sandbox.lock: ") -> Any:
        """The node's inputs read into its kind's dataclass (a LockError names `where`)."""
        return self.of(node.name).typed(node, where)

    def graph(self, spec: Spec) -> LayerGraph:
        """The layer graph `spec` declares: every kind's nodes and what each needs."""
        graph = LayerGraph()
        for kind in self._kinds:
            for declared in kind.declare(spec):
                node = Node(name=declared.name, kind=kind.stack, prefix=kind.prefix(declared.name))
                graph.add(node, list(declared.needs))
        return graph

    def epoch(self, nodes: Mapping[str, NodeLock]) -> int:
        """The SOURCE_DATE_EPOCH of locked `nodes`: their base's (0 for an image base)."""
        return self.base(nodes).source_epoch

    def base(self, nodes: Mapping[str, NodeLock]) -> BaseInputs:
        """The base of locked `nodes`: what the image's config and user start from."""
        return nodes[Base.name].inputs_as(BaseInputs)

    def system(self, nodes: Mapping[str, NodeLock]) -> SystemInputs:
        """The system node of locked `nodes`: the image's user and workdir."""
        return nodes[System.name].inputs_as(SystemInputs)

    def env(self, nodes: Mapping[str, NodeLock]) -> dict[str, str]:
        """What the kinds add to the image's env beyond their layers' (agent CLIs kept from
        updating themselves, model/agents.py)."""
        found: dict[str, str] = {}
        for name in stack(nodes):
            found.update(self.of(name).env(nodes[name]))
        return found

    def placement(self, nodes: Mapping[str, NodeLock]) -> dict[str, list[str]]:
        """Where each node's parts are made (on the host; in a container and why), by node,
        for `build --explain` and `status`."""
        return {name: self.of(name).placement(node) for name, node in nodes.items()}

    def distro(self, nodes: Mapping[str, NodeLock], platform: str) -> Distro:
        """Where the Debian packages of locked `nodes` come from (for their package URLs)."""
        base = nodes.get(Base.name)
        if base is None:
            return Distro(arch=platform.split("/")[-1])
        return distro_of(base.inputs_as(BaseInputs), platform)


KINDS = Registry([Base(), System(), Runtime(), PipTools(), NpmTools(), BinTools(), Deps()])


def build_graph(spec: Spec) -> LayerGraph:
    """The layer graph `spec` declares, with the registered kinds."""
    return KINDS.graph(spec)
