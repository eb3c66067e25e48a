"""The layer graph (DESIGN.md §3): which nodes a spec has and what each one needs.

The only module importing networkx; the node kinds (`builder.kinds`) say which nodes a
spec declares and what each needs (`KINDS.graph`). Edges are real needs (a runtime needs the
system layer, npm tools need node), so independent nodes can build in parallel and a change to
one never rebuilds another. `stack_order` is the build order, the order a build environment
stacks its layers in (the final image reorders them so a bump re-registers least:
`builder/kinds/order.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from builder.model.lockfile import NodeKind, stack_key

if TYPE_CHECKING:
    import networkx as nx


@dataclass(frozen=True, kw_only=True)
class Node:
    name: str
    kind: NodeKind  # where its layers sit in the stack
    prefix: str | None  # the only folder it may write to; None if it owns `/` (base, system)


class LayerGraph:
    """A DAG of `Node`s keyed by name."""

    def __init__(self) -> None:
        import networkx  # 50 ms: imported by lock and status, not by a build (it reads the lock)

        self._g: nx.DiGraph = networkx.DiGraph()

    def add(self, node: Node, needs: list[str]) -> None:
        self._g.add_node(node.name, node=node)
        for parent in needs:
            self._g.add_edge(parent, node.name)

    def node(self, name: str) -> Node:
        node: Node = self._g.nodes[name]["node"]
        return node

    def __contains__(self, name: object) -> bool:
        return name in self._g

    def names(self) -> list[str]:
        """Every node, parents before children, ties broken by stack order then name."""
        from networkx import lexicographical_topological_sort

        return list(lexicographical_topological_sort(self._g, key=self._rank))

    def parents(self, name: str) -> list[str]:
        return sorted(self._g.predecessors(name), key=self._rank)

    def ancestors(self, name: str) -> list[str]:
        """Every node below `name`, in stack order: the layers its build container holds."""
        from networkx import ancestors

        return sorted(ancestors(self._g, name), key=self._rank)

    def stack_order(self) -> list[str]:
        return sorted(self._g.nodes, key=self._rank)

    def edges(self) -> list[tuple[str, str]]:
        return sorted(self._g.edges, key=lambda e: (self._rank(e[1]), self._rank(e[0])))

    def _rank(self, name: str) -> str:
        rank, _ = stack_key(self.node(name).kind, name)
        return f"{rank}:{name}"


def render(graph: LayerGraph, fmt: str) -> str:
    """The graph as `text` (an indented list), `dot` (Graphviz) or `mermaid`."""
    if fmt == "dot":
        lines = ["digraph sandbox {", "  rankdir=BT;"]
        lines += [f'  "{n}";' for n in graph.names()]
        lines += [f'  "{child}" -> "{parent}";' for parent, child in graph.edges()]
        return "\n".join([*lines, "}"]) + "\n"
    if fmt == "mermaid":
        ids = {name: name.replace(".", "_") for name in graph.names()}
        lines = ["graph BT"]
        lines += [f'  {ids[n]}["{n}"]' for n in graph.names()]
        lines += [f"  {ids[child]} --> {ids[parent]}" for parent, child in graph.edges()]
        return "\n".join(lines) + "\n"
    lines = []
    for name in graph.names():
        parents = graph.parents(name)
        needs = f"  <- {', '.join(parents)}" if parents else ""
        lines.append(f"{name}{needs}")
    return "\n".join(lines) + "\n"
