"""The Executor (builder/realize/execute.py) carrying out a plan on the recording FakeEngine.

The nodes above the base are built by the real system recipe: each step's container is a
call of the test's step function, which writes the step's files into the container's upper
dir, as overlay2 would; the layer is captured, normalized and stored in a real cache. So the
tests see what a user would: which nodes build, when, in which stage, and what they leave.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.core.errors import BuildError
from builder.core.progress import Progress
from builder.engine.step import StepContext
from builder.kinds import KINDS
from builder.kinds.kind import Declared, Inputs, KindBase, LockContext, StepResult
from builder.kinds.layer import host_layer
from builder.kinds.system import System
from builder.model.lockfile import NodeKind, NodeLock
from builder.model.spec import Spec
from builder.realize.execute import Executor, NodeOutcome
from builder.realize.plan import make_plan
from builder.store.cache import Cache, Layer, NodeEntry
from tests.unit.fake_engine import FakeEngine, Run

SYSTEM_INPUTS: dict[str, Any] = {"request": [], "packages": [], "user": "", "workdir": ""}


def _key(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


class SystemLike(System):
    """A kind, registered by the tests alone, whose nodes (a, b, child, ...) build like the
    system layer: one container, its diff captured. Registered last, it owns what the
    built-in kinds do not."""

    name = "system-like"

    def owns(self, node: str) -> bool:
        return "." not in node


@pytest.fixture(autouse=True)
def system_like() -> Iterator[None]:
    kind = SystemLike()
    KINDS.register(kind)
    yield
    KINDS.unregister(kind)


def _node(name: str, *parents: str) -> NodeLock:
    """A node built like the system layer (one container, its diff captured)."""
    kind = "base" if name == "base" else "system"
    inputs = {} if name == "base" else SYSTEM_INPUTS
    return NodeLock(name=name, kind=NodeKind(kind), key=_key(name), parents=parents, inputs=inputs)


def put_base(cache: Cache, key: str) -> None:
    """A built base in `cache` under `key`: one layer holding /etc/os-release."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("etc/os-release")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"x=1"))
    layer = cache.root / "tmp" / "base.tar"
    layer.write_bytes(data.getvalue())
    diff_id = "sha256:" + hashlib.sha256(data.getvalue()).hexdigest()
    cache.store_layer(layer, diff_id)
    size = len(data.getvalue())
    cache.put(NodeEntry(name="base", key=key, layers=(Layer(diff_id=diff_id, size=size),)))


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    cache = Cache(tmp_path / "cache", downloads=tmp_path / "dl", store=tmp_path / "store")
    cache.ensure()
    put_base(cache, _key("base"))
    return cache


def _execute(
    cache: Cache, engine: FakeEngine, nodes: list[NodeLock], *, jobs: int
) -> list[NodeOutcome]:
    by_name = {n.name: n for n in nodes}
    executor = Executor(
        nodes=by_name,
        cache=cache,
        engine=lambda: engine,
        platform="linux/amd64",
        epoch=0,
        progress=Progress(io.StringIO()),
        project_dir=cache.root.parent,
    )
    return executor.run(make_plan(by_name, cache.entry), jobs=jobs)


class Steps:
    """Step containers that each write /opt/made-by-<container> and record how many run at
    once; with `meet`, that many must be running together or the step fails."""

    def __init__(self, *, meet: int = 0) -> None:
        self._lock = threading.Lock()
        self._meeting = threading.Barrier(meet) if meet else None
        self.running = 0
        self.most = 0
        self.order: list[str] = []

    def __call__(self, run: Run) -> int:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.order.append(f"start {run.container}")
        if self._meeting is not None:
            self._meeting.wait(timeout=10)  # raises unless `meet` containers run at once
        else:
            time.sleep(0.05)
        (run.upper / "opt").mkdir()
        (run.upper / "opt" / f"made-by-{run.container}").write_text(run.image)
        run.log.write_text("@@installed\n@@end\n")
        with self._lock:
            self.running -= 1
            self.order.append(f"end {run.container}")
        return 0


def test_independent_nodes_build_at_the_same_time(cache: Cache, tmp_path: Path) -> None:
    engine = FakeEngine(root=tmp_path / "engine")
    steps = Steps(meet=2)
    engine.step = steps

    outcomes = _execute(
        cache, engine, [_node("base"), _node("a", "base"), _node("b", "base")], jobs=2
    )

    assert [(o.name, o.status) for o in outcomes] == [
        ("base", "cached"),
        ("a", "built"),
        ("b", "built"),
    ]
    assert steps.most == 2
    # Both ran in the base's stage, loaded once.
    stage = {run.image for run in engine.runs}
    assert len(stage) == 1
    assert [c for c in engine.calls if c.startswith("load")] == [
        f"load sandbox-stage:{stage.pop().removeprefix('sha256:')[:12]} (1 layers)"
    ]


def test_jobs_1_builds_one_node_at_a_time(cache: Cache, tmp_path: Path) -> None:
    engine = FakeEngine(root=tmp_path / "engine")
    steps = Steps()
    engine.step = steps

    _execute(cache, engine, [_node("base"), _node("a", "base"), _node("b", "base")], jobs=1)

    assert steps.most == 1
    assert steps.order == ["start c1", "end c1", "start c2", "end c2"]


def test_a_node_builds_after_its_parent_on_the_parents_layer(cache: Cache, tmp_path: Path) -> None:
    engine = FakeEngine(root=tmp_path / "engine")
    steps = Steps()
    engine.step = steps
    nodes = [_node("base"), _node("a", "base"), _node("child", "a"), _node("b", "base")]

    outcomes = _execute(cache, engine, nodes, jobs=4)

    by_name = {o.name: o for o in outcomes}
    assert [o.name for o in outcomes] == ["base", "a", "b", "child"]
    child_run = engine.runs[-1]
    assert steps.order.index(f"start {child_run.container}") > steps.order.index(
        f"end {engine.runs[0].container}"
    )
    # The child's stage is the base's layer and a's: a load of two layers.
    loads = [c for c in engine.calls if c.startswith("load")]
    assert loads[-1].endswith("(2 layers)")
    [layer] = by_name["child"].entry.layers
    with tarfile.open(cache.layer_path(layer.diff_id)) as tar:
        assert f"opt/made-by-{child_run.container}" in tar.getnames()
    # Every container was removed, and every built node is in the cache.
    assert sorted(c for c in engine.calls if c.startswith("rm ")) == ["rm c1", "rm c2", "rm c3"]
    for name in ("a", "b", "child"):
        assert cache.entry(_key(name)) == by_name[name].entry


def test_a_failed_step_fails_the_build_and_keeps_no_entry(cache: Cache, tmp_path: Path) -> None:
    def fails(run: Run) -> int:
        run.log.write_text("E: something broke\n")
        return 100

    engine = FakeEngine(root=tmp_path / "engine", step=fails)

    with pytest.raises(BuildError, match="something broke"):
        _execute(cache, engine, [_node("base"), _node("a", "base")], jobs=2)

    assert cache.entry(_key("a")) is None
    assert engine.calls[-1] == "rm c1"


def test_a_second_run_finds_everything_cached(cache: Cache, tmp_path: Path) -> None:
    engine = FakeEngine(root=tmp_path / "engine", step=Steps())
    nodes = [_node("base"), _node("a", "base")]
    _execute(cache, engine, nodes, jobs=2)
    runs = len(engine.runs)

    again = _execute(cache, engine, nodes, jobs=2)

    assert [o.status for o in again] == ["cached", "cached"]
    assert len(engine.runs) == runs


class HostLike(KindBase):
    """A kind, registered by the tests alone, whose nodes (`host.<x>`) need no stage: each
    writes its layer on the host, through `make` (the test's), which may still ask for the
    node's stage, as npm tools do when a tarball turns out to need a container."""

    name = "host"
    many = True
    stack = NodeKind.TOOLS
    recipe = "host/1"
    inputs = dict

    def __init__(self) -> None:
        self.make: Callable[[StepContext, NodeLock], object] = lambda ctx, node: None

    def declare(self, spec: Spec) -> list[Declared]:
        return []

    def lock(self, ctx: LockContext, name: str) -> Inputs:
        raise NotImplementedError

    def needs_stage(self, node: NodeLock) -> bool:
        return False

    def build(self, ctx: StepContext, node: NodeLock) -> StepResult:
        def fill(folder: Path) -> dict[str, str]:
            self.make(ctx, node)
            (folder / "made").write_text(node.name)
            return {}

        return host_layer(ctx, node, fill)


@pytest.fixture
def host_like() -> Iterator[HostLike]:
    kind = HostLike()
    KINDS.register(kind)
    yield kind
    KINDS.unregister(kind)


def _host_node(name: str, *parents: str) -> NodeLock:
    return NodeLock(name=name, kind=NodeKind.TOOLS, key=_key(name), parents=parents, inputs={})


def test_a_node_needing_no_stage_builds_while_its_parent_does(
    cache: Cache, tmp_path: Path, host_like: HostLike
) -> None:
    together = threading.Barrier(2)

    def parent_step(run: Run) -> int:
        together.wait(timeout=10)  # raises unless the host node runs meanwhile
        (run.upper / "opt").mkdir()
        (run.upper / "opt" / "a").write_text("a")
        run.log.write_text("@@installed\n@@end\n")
        return 0

    host_like.make = lambda ctx, node: together.wait(timeout=10)
    engine = FakeEngine(root=tmp_path / "engine", step=parent_step)
    nodes = [_node("base"), _node("a", "base"), _host_node("host.x", "a")]

    outcomes = _execute(cache, engine, nodes, jobs=2)

    # Built at once, and still stacked where they belong: the host node above its parent.
    assert [(o.name, o.status) for o in outcomes] == [
        ("base", "cached"),
        ("a", "built"),
        ("host.x", "built"),
    ]
    assert len(engine.runs) == 1  # the host node ran no container


def test_a_node_needing_its_stage_after_all_waits_for_its_parents_in_one_slot(
    cache: Cache, tmp_path: Path, host_like: HostLike
) -> None:
    """With --jobs 1 the host node starts first (it comes first in the plan: tools.zed sorts
    after it); asking for its stage hands its slot to the parent, which builds, and the stage
    then holds the parent's layer. Holding the slot would wait forever."""
    stages: list[str] = []
    host_like.make = lambda ctx, node: stages.append(ctx.stage(node.name))
    engine = FakeEngine(root=tmp_path / "engine", step=Steps())
    zed = NodeLock(
        name="zed", kind=NodeKind.TOOLS, key=_key("zed"), parents=("base",), inputs=SYSTEM_INPUTS
    )
    nodes = [_node("base"), _host_node("host.x", "zed"), zed]
    outcomes: list[NodeOutcome] = []
    build = threading.Thread(
        target=lambda: outcomes.extend(_execute(cache, engine, nodes, jobs=1)), daemon=True
    )

    build.start()
    build.join(timeout=20)

    assert not build.is_alive(), "the build waits forever"
    assert [(o.name, o.status) for o in outcomes] == [
        ("base", "cached"),
        ("host.x", "built"),
        ("zed", "built"),
    ]
    loads = [c for c in engine.calls if c.startswith("load")]
    assert loads[-1].endswith("(2 layers)")  # base and zed: the stage waited for zed
    assert len(stages) == 1


def test_a_failed_parent_stops_a_node_waiting_for_its_stage(
    cache: Cache, tmp_path: Path, host_like: HostLike
) -> None:
    started = threading.Event()

    def fails(run: Run) -> int:
        started.wait(timeout=10)  # the host node is waiting for this parent by now
        run.log.write_text("E: something broke\n")
        return 100

    def make(ctx: StepContext, node: NodeLock) -> None:
        started.set()
        ctx.stage(node.name)

    host_like.make = make
    engine = FakeEngine(root=tmp_path / "engine", step=fails)
    nodes = [_node("base"), _node("a", "base"), _host_node("host.x", "a")]

    with pytest.raises(BuildError, match="something broke"):
        _execute(cache, engine, nodes, jobs=2)

    assert cache.entry(_key("host.x")) is None
