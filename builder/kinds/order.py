"""The order of the nodes' layers in the final image: what changes least sits lowest.

`docker load` registers (extracts) every layer it is sent, and a layer above a changed one
sits on a new chain, so it is sent and registered again though its bytes are the same.
Measured on docker 20.10 (overlay2) with the benchmark's image (docs/benchmark.md): in build
order (base, system, runtimes, tools, deps) a node 22 -> 24 bump re-registered 785 MB above
the runtime (the 444 MB @openai/codex layer among them) in 5.4 s, though only node and the
pnpm tree built on it changed.

Every node except base and system writes under its own prefix (DESIGN.md §3), so their
layers stack in any order with the same files; only the chains differ. The image stacks:

1. base, system: everything else is built on them;
2. nodes whose layers depend on no runtime: built in a container whose stage holds no
   runtime (pip tools on the system's python), then those made on the host (`needs_stage`
   false: npm tools laid out from the lock, binaries), whose tools are bumped one at a time
   and cost little to register again;
3. the runtimes;
4. the nodes built on a runtime (a pnpm tree installed by node): they change with it.

Ties keep the build order (`stack`). The order is a function of the lock alone (kinds,
parents, and what the kinds say of the lock's inputs), so the same lock gives the same image
ID on any machine. Build environments (stages) are not reordered: a node's stage holds its
ancestors in build order, the chains that are shared between stages.
The env is composed in build order (`compose_env`), so PATH does not change with this order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from builder.model.lockfile import NodeKind, NodeLock, ancestors, stack

BOTTOM, STAGED, HOST_LAID, RUNTIMES, ON_RUNTIMES = range(5)


def image_order(
    nodes: Mapping[str, NodeLock], *, needs_stage: Callable[[NodeLock], bool]
) -> list[str]:
    """The lock's node names, bottom first, as the final image stacks their layers."""
    built = stack(nodes)
    return sorted(built, key=lambda name: (_group(nodes, name, needs_stage), built.index(name)))


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
