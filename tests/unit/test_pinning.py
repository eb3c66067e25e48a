"""Lock warnings (builder/pinning.py): what floats in sandbox.toml, and what lock pinned it to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builder.lockfile import NodeLock
from builder.pinning import floating
from builder.spec import BaseSpec, Bootstrap, ImageSpec, Spec, ToolsSpec

DIGEST = "sha256:" + "a" * 64


def _spec(base: BaseSpec, pip: tuple[str, ...] = (), npm: tuple[str, ...] = ()) -> Spec:
    return Spec(
        path=Path("/p/sandbox.toml"),
        image=ImageSpec(name="t/t"),
        base=base,
        tools=ToolsSpec(pip=pip, npm=npm),
    )


def _node(name: str, inputs: dict[str, Any]) -> NodeLock:
    return NodeLock(name=name, kind="tools", key="k", parents=(), inputs=inputs)


NODES = {
    "base": _node("base", {"image": "debian:bookworm", "pinned": f"debian@{DIGEST}"}),
    "tools.pip": _node(
        "tools.pip",
        {
            "tools": {
                "ruff": {"packages": [{"name": "ruff", "version": "0.6.9"}]},
                "black": {"packages": [{"name": "click", "version": "8"}]},
            }
        },
    ),
    "tools.npm": _node(
        "tools.npm",
        {"packages": [{"path": "node_modules/typescript", "version": "5.9.3"}]},
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
