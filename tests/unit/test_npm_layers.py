"""The layers of a tools.npm node (builder/kinds/npm/layers.py): which tools are assembled on
the host, what the build says of each, and which keys find them again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builder.engine.step import StepContext
from builder.kinds import KINDS
from builder.model.lockfile import NodeKind, NodeLock
from builder.store.cache import Cache
from tests.unit.nostage import NeedsEngine, no_engine, no_stage
from tests.unit.test_npmtree import _packages

EPOCH = 1_700_000_000


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    cache = Cache(tmp_path / "cache", downloads=tmp_path / "dl", store=tmp_path / "store")
    cache.ensure()
    return cache


def _ctx(
    cache: Cache, said: list[str], *, epoch: int = EPOCH, stage: Callable[[str], str] = no_stage
) -> StepContext:
    return StepContext(
        cache=cache,
        engine=no_engine,
        platform="linux/amd64",
        epoch=epoch,
        stage=stage,
        project_dir=cache.root.parent,
        say=said.append,
    )


def _node(cache: Cache, *, node: str = "22.20.0", **extra: Any) -> NodeLock:
    packages = _packages(cache.downloads / "npm" / "_cacache", **extra)
    return NodeLock(
        name="tools.npm",
        kind=NodeKind.TOOLS,
        key="sha256:" + node.replace(".", "").ljust(64, "0"),
        parents=("runtime.node",),
        inputs={"node": node, "tools": ["alpha@1"], "packages": packages},
    )


def test_a_tool_without_scripts_is_assembled_on_the_host_without_a_stage(cache: Cache) -> None:
    said: list[str] = []
    node = _node(cache)

    result = KINDS.of(node.name).build(_ctx(cache, said), node)

    assert KINDS.of(node.name).needs_stage(node) is False
    [layer] = result.layers
    assert cache.layer_path(layer.diff_id).is_file()
    assert result.env == {"PATH": "/opt/sandbox/tools/npm/alpha/node_modules/.bin"}
    assert said == ["  tools.npm: alpha@1 assembled on the host"]


def test_a_new_runtime_below_finds_the_host_assembled_layer_in_the_cache(cache: Cache) -> None:
    first = KINDS.of("tools.npm").build(_ctx(cache, []), _node(cache))
    said: list[str] = []

    again = KINDS.of("tools.npm").build(_ctx(cache, said), _node(cache, node="24.11.1"))

    assert again.layers == first.layers
    assert said == ["  tools.npm: alpha@1 cached (assembled on the host)"]


def test_another_epoch_is_another_layer(cache: Cache) -> None:
    first = KINDS.of("tools.npm").build(_ctx(cache, []), _node(cache))
    said: list[str] = []

    again = KINDS.of("tools.npm").build(_ctx(cache, said, epoch=EPOCH + 1), _node(cache))

    assert again.layers[0].diff_id != first.layers[0].diff_id
    assert said == ["  tools.npm: alpha@1 assembled on the host"]


def test_a_tool_with_install_scripts_goes_to_a_container_and_says_why(cache: Cache) -> None:
    said: list[str] = []
    node = _node(cache, hasInstallScript=True)

    assert KINDS.of(node.name).needs_stage(node) is True
    with pytest.raises(NeedsEngine):
        KINDS.of(node.name).build(_ctx(cache, said, stage=lambda name: "sha256:stage"), node)
    assert said == [
        "  tools.npm: alpha@1 in a container: alpha has install scripts (hasInstallScript)"
    ]


def test_placement_says_which_tools_are_assembled_and_why_others_are_not(cache: Cache) -> None:
    kind = KINDS.of("tools.npm")

    assert kind.placement(_node(cache)) == ["alpha@1: assembled on the host"]
    assert kind.placement(_node(cache, hasInstallScript=True)) == [
        "alpha@1: in a container: alpha has install scripts (hasInstallScript)"
    ]


def test_a_full_disk_while_assembling_is_the_full_disk_error(
    cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from builder.core.errors import CacheError

    def full(**_: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("builder.kinds.npm.layers.assemble_npm_tree", full)
    with pytest.raises(CacheError, match=r"tools.npm: assembling alpha@1: no space left"):
        KINDS.of("tools.npm").build(_ctx(cache, []), _node(cache))
    assert list((cache.root / "tmp").iterdir()) == []  # nothing half-written kept
