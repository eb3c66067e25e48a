"""The typed inputs (model/inputs.py, model/toolinputs.py) give back the lock they were read from.

The dict a node's inputs come from is what its key hashes and what sandbox.lock holds, so the
round trip must be exact: every node of every lock in the repository (its own, the example's,
the test fixtures') is read typed and written back byte for byte, each key recomputed equal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builder.core.errors import LockError
from builder.core.keys import node_key
from builder.kinds import KINDS
from builder.model import lockfile
from builder.model.inputs import BootstrapBase, ImageBase, RuntimeInputs, SystemInputs
from builder.model.lockfile import Lock, NodeKind, NodeLock
from builder.model.spec import DepManager, DepMode, Provider
from builder.model.toolinputs import BinToolInputs, DepsInputs, NpmToolsInputs, PipToolsInputs
from builder.model.typed import write_inputs

ROOT = Path(__file__).resolve().parents[2]
LOCKS = sorted(
    {
        ROOT / "sandbox.lock",
        *(ROOT / "examples").glob("*/sandbox.lock"),
        *(ROOT / "tests").rglob("sandbox.lock"),
    }
)
PLATFORM = "linux/amd64"


def _retyped(lock: Lock) -> Lock:
    """`lock` with every node's inputs read typed and given back, keys computed anew."""
    platforms: dict[str, dict[str, NodeLock]] = {}
    for platform in lock.platforms:
        nodes: dict[str, NodeLock] = {}
        for name in lockfile.stack(lock.platforms[platform]):
            old = lock.platforms[platform][name]
            inputs = write_inputs(KINDS.typed(old))
            parents = {p: nodes[p].key for p in old.parents}
            key = node_key(
                recipe=KINDS.of(name).recipe, inputs=inputs, parents=parents, platform=platform
            )
            nodes[name] = NodeLock(
                name=name, kind=old.kind, key=key, parents=old.parents, inputs=inputs
            )
        platforms[platform] = {name: nodes[name] for name in lock.platforms[platform]}
    return Lock(
        spec_hash=lock.spec_hash, source_date_epoch=lock.source_date_epoch, platforms=platforms
    )


@pytest.mark.parametrize("path", LOCKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_node_of_every_lock_round_trips_byte_for_byte(path: Path) -> None:
    lock = lockfile.read(path, KINDS)
    again = _retyped(lock)

    for platform, nodes in lock.platforms.items():
        for name, node in nodes.items():
            assert again.platforms[platform][name].inputs == node.inputs
            assert again.platforms[platform][name].key == node.key
    assert lockfile.dumps(again) == path.read_text()


def test_the_round_trip_covers_every_kind_of_node_the_repository_locks() -> None:
    kinds = {
        type(KINDS.typed(node))
        for path in LOCKS
        for nodes in lockfile.read(path, KINDS).platforms.values()
        for node in nodes.values()
    }
    assert len(LOCKS) >= 3
    assert {BootstrapBase, SystemInputs, RuntimeInputs, PipToolsInputs, NpmToolsInputs} <= kinds
    assert DepsInputs in kinds


# Shapes the repository's locks do not hold, as the resolvers write them.
OTHER_SHAPES: dict[str, tuple[NodeKind, dict[str, Any]]] = {
    "base": (
        NodeKind.BASE,
        {
            "image": "debian:bookworm-slim",
            "pinned": "debian@sha256:" + "a" * 64,
            "epoch": 0,
            "config": {"Cmd": ["bash"], "Env": ["PATH=/usr/bin"], "Labels": {"a": "b"}},
            "os": {"id": "debian", "version_id": "12", "codename": "bookworm"},
            "packages": [{"name": "bash", "version": "5.2.15-2+b7"}],
            "users": [{"name": "root", "uid": 0}, {"name": "node", "uid": 1000}],
            "programs": {"python3": {"path": "/usr/bin/python3", "version": "3.11.2"}},
        },
    ),
    "system": (
        NodeKind.SYSTEM,
        {
            "request": ["git"],
            "user": "node",
            "workdir": "/workspace",
            "owner": "node",
            "allow_setuid": ["/usr/bin/su"],
            "packages": [{"name": "git", "version": "1:2.39", "sha256": "b" * 64}],
        },
    ),
    "runtime.python": (
        NodeKind.RUNTIME,
        {
            "runtime": "python",
            "provider": "pypi",
            "request": "3.12",
            "version": "3.12.8",
            "url": "https://files.pythonhosted.org/x.whl",
            "sha256": "c" * 64,
            "format": "zip",
            "root": "",
            "requested": {"provider": "pypi", "version": "3.12", "mirror": ""},
        },
    ),
    "tools.bin.gh": (
        NodeKind.TOOLS,
        {
            "name": "gh",
            "version": "2.63.0",
            "path": "vendor/gh.tar.gz",
            "sha256": "d" * 64,
            "format": "tar.gz",
            "bin": "gh",
            "requested": {
                **{"version": "2.63.0", "url": "", "path": "vendor/gh.tar.gz", "bin": "gh"},
                **{"auth_env": "", "file_sha256": "d" * 64},
            },
        },
    ),
    "deps.api": (
        NodeKind.DEPS,
        {
            "manager": "uv",
            "mode": "mount",
            "path": "api",
            "files": {"pyproject.toml": "e" * 64, "uv.lock": "f" * 64},
            "runtime": "3.12.8",
            "mount": "/workspace/api/.venv",
            "uv": {
                "version": "0.5.11",
                "url": "https://files.pythonhosted.org/uv.whl",
                "sha256": "1" * 64,
                "requested": "newest",
            },
        },
    ),
}


def _lock_of(shapes: dict[str, tuple[NodeKind, dict[str, Any]]]) -> Lock:
    nodes = {}
    for name, (kind, inputs) in shapes.items():
        recipe = KINDS.of(name).recipe
        key = node_key(recipe=recipe, inputs=inputs, parents={}, platform=PLATFORM)
        nodes[name] = NodeLock(name=name, kind=kind, key=key, parents=(), inputs=inputs)
    return Lock(spec_hash="sha256:s", source_date_epoch=0, platforms={PLATFORM: nodes})


def test_the_shapes_no_repository_lock_holds_round_trip_too(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.lock"
    lockfile.write(_lock_of(OTHER_SHAPES), path)
    lock = lockfile.read(path, KINDS)

    assert lockfile.dumps(_retyped(lock)) == path.read_text()
    nodes = lock.platforms[PLATFORM]
    base = nodes["base"].inputs_as(ImageBase)
    assert base.users is not None
    assert [u.uid for u in base.users] == [0, 1000]
    assert nodes["system"].inputs_as(SystemInputs).uid is None
    assert nodes["runtime.python"].inputs_as(RuntimeInputs).provider is Provider.PYPI
    assert nodes["tools.bin.gh"].inputs_as(BinToolInputs).source == "vendor/gh.tar.gz"
    deps = nodes["deps.api"].inputs_as(DepsInputs)
    assert (deps.manager, deps.mode) == (DepManager.UV, DepMode.MOUNT)
    assert deps.installer is not None
    assert deps.installer.bin is None


@pytest.mark.parametrize(
    ("name", "key", "value", "shown"),
    [
        ("system", "uid", "1000", "nodes.system.inputs.uid is missing or not an integer"),
        ("runtime.python", "provider", "conda", "inputs.provider is missing or not one of"),
        ("deps.api", "files", ["uv.lock"], "inputs.files is missing or not a table"),
    ],
)
def test_a_malformed_input_is_refused_naming_file_node_and_key(
    tmp_path: Path, name: str, key: str, value: Any, shown: str
) -> None:
    kind, inputs = OTHER_SHAPES[name]
    path = tmp_path / "sandbox.lock"
    lockfile.write(_lock_of({name: (kind, {**inputs, key: value})}), path)

    with pytest.raises(LockError) as caught:
        lockfile.read(path, KINDS)

    message = str(caught.value)
    assert str(path) in message
    assert shown in message
    assert "Run `sandbox lock` to rewrite the lock" in message


def test_inputs_of_another_kind_are_refused() -> None:
    kind, inputs = OTHER_SHAPES["system"]
    node = _lock_of({"system": (kind, inputs)}).platforms[PLATFORM]["system"]

    with pytest.raises(LockError, match=r"nodes\.system\.inputs\.manager is missing"):
        node.inputs_as(DepsInputs)


def test_sandbox_lock_still_reads_a_malformed_lock_to_rewrite_it(tmp_path: Path) -> None:
    kind, inputs = OTHER_SHAPES["system"]
    path = tmp_path / "sandbox.lock"
    lockfile.write(_lock_of({"system": (kind, {**inputs, "uid": "1000"})}), path)

    lock = lockfile.read(path, KINDS, older_recipes_ok=True)

    assert lock.platforms[PLATFORM]["system"].inputs["uid"] == "1000"
