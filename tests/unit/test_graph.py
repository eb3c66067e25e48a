"""The layer graph (model/graph.py): nodes and edges per DESIGN.md §3, and its renderings."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.kinds import build_graph
from builder.model.graph import LayerGraph, render
from builder.model.lockfile import NodeKind
from builder.model.spec import (
    BaseSpec,
    BinaryTool,
    DepManager,
    DepSpec,
    ImageSpec,
    Provider,
    RuntimeSpec,
    Spec,
    ToolsSpec,
)


def make_spec(
    runtimes: tuple[RuntimeSpec, ...] = (),
    pip: tuple[str, ...] = (),
    npm: tuple[str, ...] = (),
    binaries: tuple[str, ...] = (),
    deps: tuple[DepSpec, ...] = (),
) -> Spec:
    return Spec(
        path=Path("/project/sandbox.toml"),
        image=ImageSpec(name="acme/sandbox"),
        base=BaseSpec(image="debian:bookworm-slim"),
        runtimes=runtimes,
        tools=ToolsSpec(
            pip=pip,
            npm=npm,
            bin=tuple(BinaryTool(name=b, version="1.0", url="https://x.org/b") for b in binaries),
        ),
        deps=deps,
    )


def node(name: str, provider: str = "official") -> RuntimeSpec:
    return RuntimeSpec(name=name, version="1", provider=Provider(provider))


def edges(graph: LayerGraph) -> set[tuple[str, str]]:
    """(parent, child) pairs."""
    return set(graph.edges())


FULL = make_spec(
    runtimes=(node("node"), node("python"), node("go", provider="apt")),
    pip=("ruff",),
    npm=("typescript",),
    binaries=("kubectl",),
    deps=(
        DepSpec(name="web", manager=DepManager.PNPM, path="web"),
        DepSpec(name="api", manager=DepManager.UV, path="api"),
    ),
)


def test_minimal_spec_is_base_then_system() -> None:
    graph = build_graph(make_spec())

    assert graph.names() == ["base", "system"]
    assert edges(graph) == {("base", "system")}


def test_full_spec_edges_are_the_real_needs() -> None:
    assert edges(build_graph(FULL)) == {
        ("base", "system"),
        ("system", "runtime.node"),
        ("system", "runtime.python"),
        ("runtime.python", "tools.pip"),
        ("runtime.node", "tools.npm"),
        ("system", "tools.bin.kubectl"),
        ("runtime.node", "deps.web"),
        ("runtime.python", "deps.api"),
    }


def test_apt_runtime_has_no_node_and_its_tools_sit_on_system() -> None:
    graph = build_graph(make_spec(runtimes=(node("node", provider="apt"),), npm=("typescript",)))

    assert "runtime.node" not in graph
    assert graph.parents("tools.npm") == ["system"]


def test_npm_tools_without_a_node_runtime_sit_on_system() -> None:
    assert build_graph(make_spec(npm=("typescript",))).parents("tools.npm") == ["system"]


@pytest.mark.parametrize("provider", ["official", "pypi"])
def test_non_apt_runtime_is_its_own_node_under_system(provider: str) -> None:
    graph = build_graph(make_spec(runtimes=(node("python", provider=provider),), pip=("ruff",)))

    assert graph.parents("runtime.python") == ["system"]
    assert graph.parents("tools.pip") == ["runtime.python"]
    assert graph.node("runtime.python").kind is NodeKind.RUNTIME


def test_npm_deps_need_node_and_python_deps_need_python() -> None:
    graph = build_graph(
        make_spec(
            runtimes=(node("node"), node("python")),
            deps=(
                DepSpec(name="a", manager=DepManager.NPM, path="a"),
                DepSpec(name="b", manager=DepManager.PNPM, path="b"),
                DepSpec(name="c", manager=DepManager.PIP, path="c"),
                DepSpec(name="d", manager=DepManager.UV, path="d"),
            ),
        )
    )

    assert graph.parents("deps.a") == ["runtime.node"]
    assert graph.parents("deps.b") == ["runtime.node"]
    assert graph.parents("deps.c") == ["runtime.python"]
    assert graph.parents("deps.d") == ["runtime.python"]


def test_independent_runtimes_do_not_see_each_other() -> None:
    graph = build_graph(FULL)

    assert graph.ancestors("runtime.node") == ["base", "system"]
    assert graph.ancestors("tools.npm") == ["base", "system", "runtime.node"]
    assert "runtime.node" not in graph.ancestors("tools.pip")


def test_names_list_parents_before_children() -> None:
    graph = build_graph(FULL)
    position = {name: i for i, name in enumerate(graph.names())}

    for parent, child in graph.edges():
        assert position[parent] < position[child]


def test_stack_order_is_base_system_runtimes_tools_deps() -> None:
    assert build_graph(FULL).stack_order() == [
        "base",
        "system",
        "runtime.node",
        "runtime.python",
        "tools.bin.kubectl",
        "tools.npm",
        "tools.pip",
        "deps.api",
        "deps.web",
    ]


def test_prefixes_are_under_opt_sandbox_except_base_and_system() -> None:
    graph = build_graph(FULL)

    assert graph.node("base").prefix is None
    assert graph.node("system").prefix is None
    assert graph.node("runtime.node").prefix == "/opt/sandbox/runtime/node/"
    assert graph.node("tools.bin.kubectl").prefix == "/opt/sandbox/tools/bin/kubectl/"
    assert graph.node("deps.web").prefix == "/opt/sandbox/deps/web/"


def test_render_text_lists_each_node_with_its_parents() -> None:
    graph = build_graph(FULL)
    text = render(graph, "text")

    lines = text.splitlines()
    assert lines[0] == "base"
    for name in graph.names():
        parents = graph.parents(name)
        expected = f"{name}  <- {', '.join(parents)}" if parents else name
        assert expected in lines


def test_render_dot_has_every_node_and_edge() -> None:
    graph = build_graph(FULL)
    dot = render(graph, "dot")

    assert dot.startswith("digraph sandbox {")
    assert dot.rstrip().endswith("}")
    for name in graph.names():
        assert f'"{name}";' in dot
    for parent, child in edges(graph):
        assert f'"{child}" -> "{parent}";' in dot
    assert dot.count(" -> ") == len(edges(graph))


def test_render_mermaid_has_every_node_and_edge() -> None:
    graph = build_graph(FULL)
    mermaid = render(graph, "mermaid")

    assert mermaid.startswith("graph BT\n")
    for name in graph.names():
        assert f'{name.replace(".", "_")}["{name}"]' in mermaid
    for parent, child in edges(graph):
        assert f"{child.replace('.', '_')} --> {parent.replace('.', '_')}" in mermaid
    assert mermaid.count(" --> ") == len(edges(graph))
