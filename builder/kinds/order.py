"""The order of the nodes' layers in the final image: the dearest to send again sit lowest.

`docker load` registers (extracts) every layer it is sent, and a layer above a changed one
sits on a new chain, so it is sent and registered again though its bytes are the same
(~110 MB/s on docker 20.10's overlay2, docs/benchmark.md). In build order (base, system,
runtimes, tools, deps) a node 22 -> 24 bump re-registered 785 MB above the runtime (the 444 MB
@openai/codex layer among them) in 5.4 s, though only node and the pnpm tree built on it
changed.

Every node except base and system writes under its own prefix (DESIGN.md §3), so their
layers stack in any order with the same files; only the chains differ. The image stacks
(`image_layers`):

1. base and system, in build order: everything else is built on them;
2. then every other layer by what registering it costs, dearest first (ties: node name,
   then the node's own order): the layers of nodes whose bytes no runtime bump changes (pip
   tools, npm tools and deps trees laid out on the host, binaries, pip tools built on the
   system's python) and the runtimes themselves. A bump of one layer re-registers only the
   layers cheaper than it: one npm tool, the links, a small tool; a new runtime re-registers
   what is cheaper than it, not a 444 MB agent CLI;
3. last, by cost too, the layers of nodes built in a container on a runtime (a pnpm tree
   whose scripts ran on node): a runtime bump rebuilds them anyway.

What registering costs (`weight`) is its bytes plus `ENTRY_BYTES` for each entry (file,
folder, link) of its tar: the engine creates every one of them. Measured on docker 20.10's
overlay2 (2 CPUs, one layer each, no parent): @openai/codex, 423 MB in 73 entries, 1.96 s;
typescript, 21 MB in 157, 0.32 s; the pnpm tree, 21 MB in 1,931, 2.04 s; node, 193 MB in
6,195, 3.24 s. So a 21 MB tree of small files costs more than a 21 MB package and sits
below it; bytes alone stacked the tree above typescript, and a typescript bump registered
both (0.5 s of a 0.9 s rebuild). `ENTRY_BYTES` (32 KiB) is the least of what an entry cost
there (between 32 KiB and 0.3 MB of bytes as the filesystem aged).

Group 2 and 3 are told apart by `image_order` (the nodes' groups). A layer's bytes and
entries are the lock's, so the order is a function of the lock alone: the same lock gives
the same image ID on any machine. Build environments (stages) are not reordered: a
node's stage holds its ancestors in build order, the chains that are shared between stages.
The env is composed in build order (`compose_env`), so PATH does not change with this order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from builder.model.lockfile import NodeKind, NodeLock, ancestors, stack
from builder.store.cache import Layer

BOTTOM, STAGED, HOST_LAID, RUNTIMES, ON_RUNTIMES = range(5)


def image_order(
    nodes: Mapping[str, NodeLock], *, needs_stage: Callable[[NodeLock], bool]
) -> list[str]:
    """The lock's node names, bottom first, as the final image stacks their layers."""
    built = stack(nodes)
    return sorted(built, key=lambda name: (_group(nodes, name, needs_stage), built.index(name)))


ENTRY_BYTES = 32 << 10  # what one tar entry costs to register, in bytes' worth


def image_layers(
    nodes: Mapping[str, NodeLock],
    built: Mapping[str, Sequence[Layer]],
    *,
    needs_stage: Callable[[NodeLock], bool],
    entries: Mapping[str, int] | None = None,
) -> list[tuple[str, Layer]]:
    """The layers `built` (node name -> its layers, bottom first) as the final image stacks
    them, bottom first, each with the node that made it. `entries`: diff ID -> the entries
    of its tar (`Cache.layer_entries`; none known: bytes alone)."""
    counts = entries or {}
    order = [name for name in image_order(nodes, needs_stage=needs_stage) if name in built]
    ranked = []
    for rank, name in enumerate(order):
        group = _group(nodes, name, needs_stage)
        tier = 0 if group == BOTTOM else 2 if group == ON_RUNTIMES else 1
        for index, layer in enumerate(built[name]):
            cost = layer.size + ENTRY_BYTES * counts.get(layer.diff_id, 0)
            by_size = (rank, 0) if tier == 0 else (0, -cost)
            ranked.append(((tier, *by_size, name, index), name, layer))
    ranked.sort(key=lambda item: item[0])
    return [(name, layer) for _, name, layer in ranked]


def _group(
    nodes: Mapping[str, NodeLock], name: str, needs_stage: Callable[[NodeLock], bool]
) -> int:
    node = nodes[name]
    if node.kind in (NodeKind.BASE, NodeKind.SYSTEM):
        return BOTTOM
    if node.kind is NodeKind.RUNTIME:
        return RUNTIMES
    if not needs_stage(node):
        return HOST_LAID
    on_runtime = any(nodes[a].kind is NodeKind.RUNTIME for a in ancestors(nodes, name))
    return ON_RUNTIMES if on_runtime else STAGED
