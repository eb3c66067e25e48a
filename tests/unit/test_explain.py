"""`status` and `build --explain` say which input of a node changed since the last build."""

from __future__ import annotations

from typing import Any

import pytest

from builder.model.lockfile import NodeKind, NodeLock
from builder.realize.explain import MAX_LINES, changes, reasons
from builder.realize.history import BuildRecord


def _node(name: str, key: str, inputs: dict[str, Any], parents: tuple[str, ...] = ()) -> NodeLock:
    return NodeLock(name=name, kind=NodeKind.TOOLS, key=key, parents=parents, inputs=inputs)


def _record(*nodes: NodeLock) -> BuildRecord:
    return BuildRecord(
        spec="/p/sandbox.toml",
        image_id="sha256:x",
        image_name="t/t",
        nodes={
            n.name: {"key": n.key, "parents": list(n.parents), "inputs": n.inputs} for n in nodes
        },
    )


def test_a_bumped_pin_reads_as_one_line() -> None:
    old = {"packages": [{"path": "node_modules/typescript", "version": "5.7.3"}]}
    new = {"packages": [{"path": "node_modules/typescript", "version": "5.6.3"}]}
    assert changes(old, new) == ["typescript 5.7.3 -> 5.6.3"]


def test_added_and_removed_pins_and_plain_values() -> None:
    old = {"version": "22.11.0", "packages": [{"name": "a", "version": "1"}]}
    new = {"version": "22.12.0", "packages": [{"name": "b", "version": "2"}]}
    assert changes(old, new) == ["- a 1", "+ b 2", "version: '22.11.0' -> '22.12.0'"]


def test_nested_tool_closures_are_matched_by_name() -> None:
    old = {"tools": {"ruff": {"packages": [{"name": "ruff", "version": "0.6.8", "sha256": "a"}]}}}
    new = {"tools": {"ruff": {"packages": [{"name": "ruff", "version": "0.6.9", "sha256": "b"}]}}}
    assert changes(old, new) == ["ruff 0.6.8 -> 0.6.9"]


def test_same_version_other_hash_is_shown_by_field() -> None:
    old = {"packages": [{"name": "ruff", "version": "1", "sha256": "aaa"}]}
    new = {"packages": [{"name": "ruff", "version": "1", "sha256": "bbb"}]}
    assert changes(old, new) == ["packages[ruff].sha256: 'aaa' -> 'bbb'"]


def test_reasons_name_the_changed_node_and_its_dependents_only() -> None:
    base = _node("system", "k1", {"packages": []})
    node_old = _node("runtime.node", "k2", {"version": "22.11.0"}, ("system",))
    npm_old = _node("tools.npm", "k3", {"tools": ["typescript"]}, ("runtime.node",))
    pip = _node("tools.pip", "k4", {"tools": {}}, ("system",))
    before = _record(base, node_old, npm_old, pip)
    node_new = _node("runtime.node", "k5", {"version": "22.12.0"}, ("system",))
    npm_new = _node("tools.npm", "k6", {"tools": ["typescript"]}, ("runtime.node",))
    now = {n.name: n for n in (base, node_new, npm_new, pip)}

    why = reasons(now, before)

    assert why == {
        "system": [],
        "runtime.node": ["version: '22.11.0' -> '22.12.0'"],
        "tools.npm": ["built on runtime.node, which changed"],
        "tools.pip": [],
    }


def test_without_a_record_or_with_only_a_recipe_change() -> None:
    node = _node("tools.pip", "k1", {"tools": {}})
    assert reasons({"tools.pip": node}, None) == {"tools.pip": ["no earlier build recorded"]}
    before = _record(_node("tools.pip", "old", {"tools": {}}))
    assert reasons({"tools.pip": node}, before)["tools.pip"] == [
        "its recipe changed (sandbox-builder was upgraded)"
    ]


def test_long_explanations_are_clipped() -> None:
    old = {"packages": [{"name": f"p{i}", "version": "1"} for i in range(20)]}
    new = {"packages": [{"name": f"p{i}", "version": "2"} for i in range(20)]}
    before = _record(_node("system", "a", old))
    lines = reasons({"system": _node("system", "b", new)}, before)["system"]
    assert len(lines) == MAX_LINES
    assert lines[-1] == "... and 13 more changes"


def test_the_plan_prints_where_each_node_is_made_under_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from builder.actions.buildrun import print_plan
    from builder.realize.plan import make_plan

    nodes = {
        name: NodeLock(name=name, kind=NodeKind.TOOLS, key=f"sha256:{name}", parents=(), inputs={})
        for name in ("tools.npm", "tools.pip")
    }
    plan = make_plan(nodes, lambda key: None)
    where = {"tools.npm": ["alpha@1: assembled on the host"], "tools.pip": []}

    print_plan(plan, {"tools.npm": ["+ alpha 1"]}, where)

    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["build", "tools.npm", "+", "alpha", "1"]
    assert out[1].split() == ["alpha@1:", "assembled", "on", "the", "host"]
    assert out[2].split() == ["build", "tools.pip", "not", "in", "the", "cache"]
    assert len(out) == 3
