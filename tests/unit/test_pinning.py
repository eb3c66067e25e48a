"""Lock warnings (builder/kinds/pinning.py): what floats in sandbox.toml and what it was locked to;
lock notes: what an image base provides and what the image drops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builder.kinds.pinning import floating, inherited
from builder.model.lockfile import NodeKind, NodeLock
from builder.model.spec import (
    BaseSpec,
    Bootstrap,
    ImageSpec,
    Provider,
    RuntimeSpec,
    Spec,
    ToolsSpec,
)

DIGEST = "sha256:" + "a" * 64


def _spec(base: BaseSpec, pip: tuple[str, ...] = (), npm: tuple[str, ...] = ()) -> Spec:
    return Spec(
        path=Path("/p/sandbox.toml"),
        image=ImageSpec(name="t/t"),
        base=base,
        tools=ToolsSpec(pip=pip, npm=npm),
    )


def _node(name: str, inputs: dict[str, Any]) -> NodeLock:
    kind = NodeKind(name if name in ("base", "system") else name.split(".")[0])
    return NodeLock(name=name, kind=kind, key="k", parents=(), inputs=inputs)


NODES = {
    "base": _node("base", {"image": "debian:bookworm", "pinned": f"debian@{DIGEST}"}),
    "tools.pip": _node(
        "tools.pip",
        {
            "python": "3.11.2",
            "tools": {
                "ruff": {"requirement": "ruff", "packages": [{"name": "ruff", "version": "0.6.9"}]},
                "black": {"requirement": "black", "packages": [{"name": "click", "version": "8"}]},
            },
        },
    ),
    "tools.npm": _node(
        "tools.npm",
        {
            "node": "22.12.0",
            "tools": ["typescript"],
            "packages": [{"path": "node_modules/typescript", "version": "5.9.3"}],
        },
    ),
}


def test_a_moving_base_tag_is_named_with_the_digest_it_was_pinned_to() -> None:
    [warning] = floating(_spec(BaseSpec(image="debian:bookworm")), NODES)

    assert "'debian:bookworm' is a moving tag" in warning
    assert f"locked to debian@{DIGEST}" in warning


@pytest.mark.parametrize(
    "base",
    [BaseSpec(image=f"debian@{DIGEST}"), BaseSpec(bootstrap=Bootstrap(suite="bookworm"))],
)
def test_a_digest_or_a_bootstrap_base_does_not_float(base: BaseSpec) -> None:
    assert floating(_spec(base), NODES) == []


@pytest.mark.parametrize(
    ("pip", "floats"),
    [
        ("ruff", True),
        ("ruff==0.6.*", True),
        ("ruff>=0.6", True),
        ("ruff>=0.6,==0.6.9", True),
        ("ruff==0.6.9", False),
        ("ruff[extra] === 0.6.9", False),
    ],
)
def test_pip_tools_without_one_exact_version_float(pip: str, floats: bool) -> None:
    found = floating(_spec(BaseSpec(image=f"debian@{DIGEST}"), pip=(pip,)), NODES)

    assert bool(found) is floats
    if floats:
        assert "locked to 0.6.9" in found[0]
        assert "'ruff==0.6.9'" in found[0]


@pytest.mark.parametrize(
    ("npm", "floats"),
    [
        ("typescript", True),
        ("typescript@5", True),
        ("typescript@^5.9.3", True),
        ("typescript@5.9.3", False),
        ("@scope/tool@1.0.0-beta.1", False),
    ],
)
def test_npm_tools_without_an_exact_version_float(npm: str, floats: bool) -> None:
    found = floating(_spec(BaseSpec(image=f"debian@{DIGEST}"), npm=(npm,)), NODES)

    assert bool(found) is floats
    if floats:
        assert "'typescript@5.9.3'" in found[0]


def test_a_tool_the_lock_lacks_still_warns_without_a_version() -> None:
    [warning] = floating(_spec(BaseSpec(image=f"debian@{DIGEST}"), pip=("black",)), NODES)

    assert "'black' has no exact version. It is pinned" in warning


# -- what an image base provides --------------------------------------------------------------


SYSTEM = {"request": [], "user": "agent", "uid": 1000, "workdir": "/workspace", "packages": []}


def _extended(system: dict[str, Any], **base: Any) -> dict[str, NodeLock]:
    base_inputs = {
        "image": "risoluto-codex:latest",
        "pinned": DIGEST,
        "config": {"User": "1000:1000", "ExposedPorts": ["4000/tcp"]},
        "packages": [{"name": "python3", "version": "3.11.2-1+b1"}],
        "programs": {"node": {"path": "/usr/local/bin/node", "version": "22.12.0"}},
        "users": [{"name": "root", "uid": 0}, {"name": "node", "uid": 1000}],
        **base,
    }
    return {
        "base": _node("base", base_inputs),
        "system": _node("system", {**SYSTEM, **system}),
        "tools.pip": _node("tools.pip", {"python": "3.11.2", "tools": {}}),
        "tools.npm": _node("tools.npm", {"node": "22.12.0", "tools": [], "packages": []}),
    }


def test_lock_notes_what_the_base_provides_and_what_the_image_drops() -> None:
    spec = Spec(
        path=Path("/p/sandbox.toml"),
        image=ImageSpec(name="t/t", inherit=("user", "workdir")),
        base=BaseSpec(image="risoluto-codex:latest"),
        runtimes=(RuntimeSpec(name="python", version="3.11", provider=Provider.APT),),
        tools=ToolsSpec(pip=("ruff",), npm=("typescript",)),
    )

    assert inherited(spec, _extended({"user": "", "workdir": ""})) == [
        "the base exposes 4000/tcp; the image exposes no port (the security baseline)",
        "the image runs as the base's user 1000:1000 ([image].user is not set)",
        "[runtimes].python (apt): the base has python3 3.11.2-1+b1; the image uses it",
        "tools.npm uses the base's /usr/local/bin/node 22.12.0",
    ]


def test_tools_on_the_bases_debian_python_and_a_uid_taken_by_the_base_are_said() -> None:
    spec = Spec(
        path=Path("/p/sandbox.toml"),
        image=ImageSpec(name="t/t", user="agent", inherit=("workdir",)),
        base=BaseSpec(image="risoluto-codex:latest"),
        tools=ToolsSpec(pip=("ruff",)),
    )
    nodes = _extended({"user": "agent", "uid": 1001}, config={"User": "node"})
    del nodes["tools.npm"]

    assert inherited(spec, nodes) == [
        "uid 1000 is node's in the base, so user agent gets uid 1001",
        "tools.pip uses the base's python3 (python3 3.11.2-1+b1)",
    ]


def test_a_bootstrap_base_has_nothing_to_note() -> None:
    assert inherited(_spec(BaseSpec(bootstrap=Bootstrap(suite="bookworm"))), NODES) == []
