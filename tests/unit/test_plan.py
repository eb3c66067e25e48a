"""Build plans (builder/realize/plan.py): cached or build per node, and the image stack order."""

from __future__ import annotations

from builder.model.lockfile import NodeKind, NodeLock, ancestors, stack
from builder.realize.plan import Action, BuildPlan, make_plan
from builder.store.cache import NodeEntry

PARENTS = {
    "base": (),
    "system": ("base",),
    "runtime.python": ("system",),
    "runtime.node": ("system",),
    "tools.pip": ("runtime.python",),
    "tools.npm": ("runtime.node",),
    "tools.bin.kubectl": ("system",),
    "deps.web": ("runtime.node",),
    "deps.api": ("runtime.python",),
}


def nodes() -> dict[str, NodeLock]:
    """Every kind of node, inserted children first, so no test passes by insertion order."""
    return {
        name: NodeLock(
            name=name,
            kind=NodeKind(name.split(".")[0]),
            key=f"sha256:{name}",
            parents=parents,
            inputs={},
        )
        for name, parents in reversed(PARENTS.items())
    }


def entry(key: str) -> NodeEntry:
    return NodeEntry(name=key.removeprefix("sha256:"), key=key, layers=())


def actions(plan: BuildPlan) -> dict[str, Action]:
    return {step.node.name: step.action for step in plan.steps}


def test_stack_order_is_base_system_runtimes_tools_deps_each_sorted() -> None:
    assert stack(nodes()) == [
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


def test_nothing_cached_builds_everything_in_stack_order() -> None:
    plan = make_plan(nodes(), lambda key: None)

    assert [s.node.name for s in plan.steps] == stack(nodes())
    assert plan.to_build() == stack(nodes())


def test_everything_cached_builds_nothing() -> None:
    plan = make_plan(nodes(), entry)

    assert plan.to_build() == []
    assert set(actions(plan).values()) == {Action.CACHED}


def test_cache_entries_are_looked_up_by_node_key() -> None:
    cached_keys = {"sha256:base", "sha256:system", "sha256:runtime.python"}
    asked: list[str] = []

    def lookup(key: str) -> NodeEntry | None:
        asked.append(key)
        return entry(key) if key in cached_keys else None

    plan = make_plan(nodes(), lookup)

    assert sorted(asked) == sorted(f"sha256:{n}" for n in PARENTS)
    assert actions(plan)["runtime.python"] is Action.CACHED
    assert actions(plan)["runtime.node"] is Action.BUILD
    assert plan.to_build() == [
        "runtime.node",
        "tools.bin.kubectl",
        "tools.npm",
        "tools.pip",
        "deps.api",
        "deps.web",
    ]


def test_every_step_comes_after_its_parents() -> None:
    plan = make_plan(nodes(), lambda key: None)
    position = {s.node.name: i for i, s in enumerate(plan.steps)}

    for step in plan.steps:
        for parent in step.node.parents:
            assert position[parent] < position[step.node.name]


def test_ancestors_are_the_transitive_parents_in_stack_order() -> None:
    graph = nodes()

    assert ancestors(graph, "base") == []
    assert ancestors(graph, "system") == ["base"]
    assert ancestors(graph, "tools.npm") == ["base", "system", "runtime.node"]
    assert ancestors(graph, "deps.api") == ["base", "system", "runtime.python"]
    assert ancestors(graph, "tools.bin.kubectl") == ["base", "system"]


def test_ancestors_of_a_node_exclude_independent_siblings() -> None:
    assert "runtime.python" not in ancestors(nodes(), "tools.npm")
    assert "runtime.node" not in ancestors(nodes(), "tools.pip")
