"""The final image stacks what a runtime bump leaves unchanged below the runtimes."""

from __future__ import annotations

from builder.kinds.order import image_layers, image_order
from builder.model.lockfile import NodeKind, NodeLock, stack
from builder.store.cache import Layer

HOST_LAID = {"tools.npm", "tools.bin.kubectl"}  # needs_stage false in these locks


def _node(name: str, kind: NodeKind, *parents: str) -> NodeLock:
    return NodeLock(name=name, kind=kind, key=f"sha256:{name}", parents=parents, inputs={})


def _nodes(*extra: NodeLock) -> dict[str, NodeLock]:
    nodes = [
        _node("base", NodeKind.BASE),
        _node("system", NodeKind.SYSTEM, "base"),
        _node("runtime.node", NodeKind.RUNTIME, "system"),
        _node("tools.npm", NodeKind.TOOLS, "runtime.node"),
        _node("tools.pip", NodeKind.TOOLS, "system"),
        _node("deps.web", NodeKind.DEPS, "runtime.node"),
        *extra,
    ]
    return {n.name: n for n in nodes}


def _order(nodes: dict[str, NodeLock], host_laid: set[str] = HOST_LAID) -> list[str]:
    return image_order(nodes, needs_stage=lambda node: node.name not in host_laid)


def test_the_benchmark_stack_puts_the_runtime_above_what_a_bump_leaves_alone() -> None:
    assert _order(_nodes()) == [
        "base",
        "system",
        "tools.pip",  # built in a container of base and system only
        "tools.npm",  # laid out on the host: its key holds no runtime
        "runtime.node",
        "deps.web",  # pnpm ran on node: changes with it
    ]


def test_npm_tools_that_ran_on_node_sit_above_it() -> None:
    assert _order(_nodes(), host_laid=set()) == [
        "base",
        "system",
        "tools.pip",
        "runtime.node",
        "tools.npm",
        "deps.web",
    ]


def test_a_pip_tool_on_an_official_python_sits_above_it_and_runtimes_keep_their_order() -> None:
    nodes = _nodes(
        _node("runtime.python", NodeKind.RUNTIME, "system"),
        _node("tools.bin.kubectl", NodeKind.TOOLS, "system"),
    )
    nodes["tools.pip"] = _node("tools.pip", NodeKind.TOOLS, "runtime.python")
    order = _order(nodes)
    assert order == [
        "base",
        "system",
        "tools.bin.kubectl",
        "tools.npm",
        "runtime.node",
        "runtime.python",
        "tools.pip",
        "deps.web",
    ]
    assert sorted(order) == sorted(stack(nodes)), "every node once"


def test_the_order_is_a_function_of_the_lock_not_of_its_iteration_order() -> None:
    nodes = _nodes()
    reversed_nodes = dict(reversed(list(nodes.items())))
    assert _order(reversed_nodes) == _order(nodes)


def _layer(name: str, mb: int) -> Layer:
    return Layer(diff_id=f"sha256:{name}", size=mb << 20)


def test_above_the_system_the_biggest_layers_sit_lowest() -> None:
    """The benchmark's image: a node bump re-registers only what is smaller than node, and a
    typescript bump only what is smaller than typescript; codex is never sent again."""
    built = {
        "base": [_layer("base", 77)],
        "system": [_layer("system", 151)],
        "runtime.node": [_layer("node", 203)],
        "tools.npm": [_layer("codex", 444), _layer("typescript", 23)],
        "tools.pip": [_layer("mypy", 70), _layer("ruff", 25), _layer("links", 0)],
        "deps.web": [_layer("web", 23)],
    }
    host_laid = {"tools.npm", "tools.pip", "deps.web"}

    stacked = image_layers(_nodes(), built, needs_stage=lambda node: node.name not in host_laid)

    assert [layer.diff_id.removeprefix("sha256:") for _, layer in stacked] == [
        "base", "system", "codex", "node", "mypy", "ruff", "web", "typescript", "links",
    ]  # fmt: skip
    assert [name for name, _ in stacked][5:] == ["tools.pip", "deps.web", "tools.npm", "tools.pip"]


def test_layers_built_on_a_runtime_sit_above_every_other() -> None:
    built = {
        "base": [_layer("base", 77)],
        "system": [_layer("system", 151)],
        "runtime.node": [_layer("node", 203)],
        "deps.web": [_layer("web", 500)],  # pnpm ran scripts on node: it changes with node
    }

    stacked = image_layers(_nodes(), built, needs_stage=lambda node: True)

    assert [name for name, _ in stacked] == ["base", "system", "runtime.node", "deps.web"]


def test_a_tree_of_many_small_files_sits_below_a_package_of_its_size() -> None:
    """Registering costs per entry as well as per byte: the pnpm tree (21 MB, 1,931 entries)
    goes below typescript (21 MB, 157), so a typescript bump registers typescript alone."""
    built = {
        "base": [_layer("base", 77)],
        "system": [_layer("system", 151)],
        "tools.npm": [_layer("typescript", 22)],
        "deps.web": [_layer("web", 21)],
    }
    entries = {"sha256:typescript": 157, "sha256:web": 1931}

    by_bytes = image_layers(_nodes(), built, needs_stage=lambda node: False)
    by_cost = image_layers(_nodes(), built, needs_stage=lambda node: False, entries=entries)

    assert [la.diff_id for _, la in by_bytes][2:] == ["sha256:typescript", "sha256:web"]
    assert [la.diff_id for _, la in by_cost][2:] == ["sha256:web", "sha256:typescript"]
