"""`sandbox gc` keeps what current builds use and removes the rest, on a real cache dir.

The engine is the recording FakeEngine: images and containers are listed from fixed data and
every removal is recorded, so the test sees exactly what gc asks Docker to delete.
"""

from __future__ import annotations

from pathlib import Path

from builder.actions.gc import collect
from builder.engine.interface import ImageInfo
from builder.image.loading import STAGE_LABEL
from builder.model.lockfile import Lock, NodeKind, NodeLock
from builder.realize import history
from builder.store.cache import Cache, Layer, NodeEntry
from tests.unit.fake_engine import FakeEngine


def _engine(tmp_path: Path, images: dict[str, list[ImageInfo]], held: list[str]) -> FakeEngine:
    return FakeEngine(root=tmp_path / "engine", listed=images, held={"sandbox-builder=step": held})


def _removed(engine: FakeEngine, what: str) -> list[str]:
    """The images (`rmi`) or containers (`rm`) gc asked the engine to remove."""
    return [call.split(" ", 1)[1] for call in engine.calls if call.split(" ", 1)[0] == what]


def _entry(cache: Cache, key: str, diff_id: str, size: int) -> None:
    (cache.root / "layers" / f"{diff_id}.tar").write_bytes(b"x" * size)
    cache.put(
        NodeEntry(
            name="system",
            key=f"sha256:{key}",
            layers=(Layer(diff_id=f"sha256:{diff_id}", size=size),),
        )
    )


def _lock(key: str) -> Lock:
    node = NodeLock(name="system", kind=NodeKind.SYSTEM, key=f"sha256:{key}", parents=(), inputs={})
    return Lock(
        spec_hash="sha256:s", source_date_epoch=0, platforms={"linux/amd64": {"system": node}}
    )


def test_gc_keeps_current_and_other_projects_and_removes_the_rest(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    _entry(cache, "a" * 64, "1" * 64, 100)  # this project's current node
    _entry(cache, "b" * 64, "2" * 64, 300)  # this project's node before a bump
    _entry(cache, "c" * 64, "3" * 64, 50)  # another project's last build
    spec, other = tmp_path / "p" / "sandbox.toml", tmp_path / "q" / "sandbox.toml"
    current = _lock("a" * 64)
    history.save(
        cache, spec, image_id="sha256:new", image_name="t/p", nodes=current.nodes("linux/amd64")
    )
    history.save(
        cache,
        other,
        image_id="sha256:theirs",
        image_name="t/q",
        nodes=_lock("c" * 64).nodes("linux/amd64"),
    )
    engine = _engine(
        tmp_path,
        images={
            "dev.sandbox-builder.lock": [
                ImageInfo(id="sha256:new", tags=("t/p:new", "t/p:latest"), size=1),
                ImageInfo(id="sha256:old", tags=("t/p:old",), size=1),
                ImageInfo(id="sha256:theirs", tags=("t/q:latest",), size=1),
                ImageInfo(id="sha256:shared", tags=("t/p:x", "t/q:y"), size=1),
            ],
            STAGE_LABEL: [ImageInfo(id="sha256:stage", tags=("sandbox-stage:1",), size=1)],
        },
        held=["dead-step"],
    )

    old_entry = cache.root / "nodes" / f"{'b' * 64}.json"
    expected_freed = 300 + old_entry.stat().st_size

    result = collect(cache=cache, spec_path=spec, image_name="t/p", lock=current, engine=engine)

    assert (result.entries, result.layers, result.freed) == (1, 1, expected_freed)
    assert cache.entry("sha256:" + "a" * 64) is not None
    assert cache.entry("sha256:" + "c" * 64) is not None
    assert not old_entry.exists()  # (the user-wide store keeps its copy: gc is per project)
    assert not (cache.root / "layers" / f"{'2' * 64}.tar").exists()
    assert _removed(engine, "rmi") == ["sha256:old", "sha256:stage"]
    assert _removed(engine, "rm") == ["dead-step"]


def test_dry_run_removes_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    _entry(cache, "b" * 64, "2" * 64, 300)
    result = collect(
        cache=cache, spec_path=tmp_path / "sandbox.toml", image_name="t/p", lock=_lock("a" * 64),
        engine=None, dry_run=True,
    )  # fmt: skip
    assert (result.entries, result.layers) == (1, 1)
    assert result.freed >= 300
    assert cache.entry("sha256:" + "b" * 64) is not None


def test_gc_keeps_another_platforms_last_build(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    node = NodeLock(
        name="system", kind=NodeKind.SYSTEM, key="sha256:" + "a" * 64, parents=(), inputs={}
    )
    both = Lock(
        spec_hash="sha256:s",
        source_date_epoch=0,
        platforms={"linux/amd64": {"system": node}, "linux/arm64": {"system": node}},
    )
    engine = _engine(
        tmp_path,
        images={
            "dev.sandbox-builder.lock": [
                ImageInfo(id="sha256:arm", tags=("t/p:arm", "t/p:latest-arm64"), size=1),
                ImageInfo(id="sha256:old-arm", tags=("t/p:old-arm",), size=1),
            ]
        },
        held=[],
    )
    collect(
        cache=cache, spec_path=tmp_path / "sandbox.toml", image_name="t/p", lock=both, engine=engine
    )
    assert _removed(engine, "rmi") == ["sha256:old-arm"]


def test_an_image_a_running_container_holds_is_kept_and_counted(tmp_path: Path) -> None:
    """Another build's step on the same engine runs in a stage image: gc removing it would
    be the engine's 409; gc keeps it, says so, and removes the rest."""
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    stages = [ImageInfo(id=f"sha256:stage{n}", tags=(), size=1) for n in (1, 2)]
    engine = _engine(tmp_path, images={STAGE_LABEL: stages}, held=[])
    engine.in_use = {"sha256:stage1"}
    result = collect(
        cache=cache, spec_path=tmp_path / "sandbox.toml", image_name="t/p", lock=_lock("a" * 64),
        engine=engine,
    )  # fmt: skip
    assert _removed(engine, "rmi") == ["sha256:stage1", "sha256:stage2"]  # both asked
    assert (result.images, result.in_use) == (["sha256:stage2"], ["sha256:stage1"])
