"""Loading an image writes only the layers the engine lacks, and falls back to all of them.

The engine is the recording FakeEngine: it reports the layer stacks of the images it holds
and records the member names of every archive it is asked to load; a subclass plays an
engine refusing partial archives and the containerd image store.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from builder.core.errors import BuildError
from builder.image import assemble
from builder.image.loading import IMAGE_LABEL, STAGE_LABEL, Loaded, load_image
from builder.store.cache import Cache, Layer
from tests.unit.fake_engine import FakeEngine, stack_id


class LoadingEngine(FakeEngine):
    """`refuse_partial`: refuses an archive of fewer than 3 layers, as an engine that lacks
    the layers below would; `manifest_ids`: the containerd image store, where what it loads
    gets an ID other than the config digest (here the config digest with a prefix)."""

    refuse_partial: bool = False
    manifest_ids: bool = False

    def check_load(self, layers: list[str]) -> None:
        if self.refuse_partial and len(layers) < 3:
            msg = "docker load refused the image: layer.tar: no such file"
            raise BuildError(msg)

    def loaded_id(self, config_digest: str) -> str:
        return ("manifest-of-" if self.manifest_ids else "") + config_digest


def _engine(
    tmp_path: Path,
    stacks: dict[str, list[tuple[str, ...]]],
    *,
    refuse_partial: bool,
    manifest_ids: bool = False,
) -> LoadingEngine:
    engine = LoadingEngine(root=tmp_path / "engine", stacks=stacks)
    engine.refuse_partial, engine.manifest_ids = refuse_partial, manifest_ids
    return engine


def _inspected(engine: FakeEngine) -> list[str]:
    return [call.removeprefix("inspect ") for call in engine.calls if call.startswith("inspect")]


def _tagged(engine: FakeEngine) -> str:
    return engine.tags["img:latest"]


def _layers(cache: Cache) -> list[Layer]:
    layers = []
    for digit in "123":
        body = digit.encode() * 10
        diff_id = "sha256:" + hashlib.sha256(body).hexdigest()
        cache.layer_path(diff_id).write_bytes(body)
        layers.append(Layer(diff_id=diff_id, size=10))
    return layers


def _config(layers: list[Layer]) -> str:
    config = assemble.image_config(
        layers=[("node", la) for la in layers], env={}, platform="linux/amd64", epoch=0, labels={}
    )
    return config.image_id


def _load(engine: FakeEngine, cache: Cache, layers: list[Layer]) -> Loaded:
    config = assemble.image_config(
        layers=[("node", la) for la in layers], env={}, platform="linux/amd64", epoch=0, labels={}
    )
    return load_image(engine=engine, cache=cache, config=config, layers=layers, tags=["img:latest"])


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    cache = Cache(tmp_path / "cache", downloads=tmp_path / "downloads")
    cache.ensure()
    return cache


def test_only_layers_above_the_longest_present_stack_are_written(
    cache: Cache, tmp_path: Path
) -> None:
    layers = _layers(cache)
    ids = tuple(la.diff_id for la in layers)
    other: tuple[str, ...] = (ids[0], ids[1], "sha256:" + "9" * 64)
    stacks = {STAGE_LABEL: [ids[:1]], IMAGE_LABEL: [other]}
    engine = _engine(tmp_path, stacks, refuse_partial=False)
    loaded = _load(engine, cache, layers)
    assert engine.loaded == [[f"{ids[2].removeprefix('sha256:')}/layer.tar"]]
    assert loaded.engine_id == _tagged(engine) == _config(layers)
    assert (loaded.layers, loaded.bytes) == (1, 10), "what was sent is what build --json reports"


def test_on_the_containerd_store_the_image_is_named_and_tagged_by_the_engines_id(
    cache: Cache, tmp_path: Path
) -> None:
    engine = _engine(tmp_path, {}, refuse_partial=False, manifest_ids=True)
    layers = _layers(cache)
    found = _load(engine, cache, layers).engine_id
    assert found == f"manifest-of-{_config(layers)}" == _tagged(engine)
    again = _load(engine, cache, _layers(cache))
    assert again.engine_id == found
    assert len(engine.loaded) == 1, "an image the engine holds under its own ID is not loaded again"
    assert (again.layers, again.bytes) == (0, 0)


def test_an_engine_that_loads_but_does_not_list_the_image_is_an_error(
    cache: Cache, tmp_path: Path
) -> None:
    engine = _engine(tmp_path, {}, refuse_partial=False)
    engine.find_image = lambda *a, **k: None  # type: ignore[method-assign]
    with pytest.raises(BuildError, match="lists no image of config"):
        _load(engine, cache, _layers(cache))


def test_an_engine_refusing_the_partial_archive_gets_the_full_one(
    cache: Cache, tmp_path: Path
) -> None:
    layers = _layers(cache)
    engine = _engine(tmp_path, {STAGE_LABEL: [(layers[0].diff_id,)]}, refuse_partial=True)
    loaded = _load(engine, cache, layers)
    assert [len(names) for names in engine.loaded] == [2, 3]
    assert loaded.layers == 3, "the full archive's layers are the ones reported"


def test_a_refused_full_archive_is_an_error(cache: Cache, tmp_path: Path) -> None:
    layers = _layers(cache)[:2]
    engine = _engine(tmp_path, {}, refuse_partial=True)
    with pytest.raises(BuildError, match="refused"):
        _load(engine, cache, layers)


def test_an_image_is_inspected_once_for_all_loads(cache: Cache, tmp_path: Path) -> None:
    layers = _layers(cache)
    ids = tuple(la.diff_id for la in layers)
    stacks = {STAGE_LABEL: [ids[:1]], IMAGE_LABEL: [ids[:2]]}
    engine = _engine(tmp_path, stacks, refuse_partial=False)
    _load(engine, cache, layers)
    assert sorted(_inspected(engine)) == sorted([stack_id(ids[:1]), stack_id(ids[:2])])
    engine.calls.clear()
    engine.tags.clear()  # gone from the engine: loaded again
    _load(engine, cache, layers)
    assert _inspected(engine) == [], "the stacks are remembered in cache/stacks.json"
    assert engine.loaded[-1] == [f"{ids[2].removeprefix('sha256:')}/layer.tar"]


def test_the_layers_of_a_held_image_are_not_sent(cache: Cache, tmp_path: Path) -> None:
    """An image base: the engine has the pinned image the base node's layers came from, so
    a stage or an image on it sends only the layers above; an image it lacks sends all."""
    layers = _layers(cache)
    engine = _engine(tmp_path, {}, refuse_partial=False)
    base: dict[str, Any] = {"RootFS": {"Layers": [layers[0].diff_id, layers[1].diff_id]}}

    def inspect(ref: str) -> dict[str, Any]:
        if ref != "sha256:pinned":
            msg = f"no image {ref} in the engine"
            raise BuildError(msg)
        return base

    engine.inspect = inspect  # type: ignore[method-assign]
    config = assemble.image_config(
        layers=[("node", la) for la in layers], env={}, platform="linux/amd64", epoch=0, labels={}
    )
    load_image(
        engine=engine,
        cache=cache,
        config=config,
        layers=layers,
        tags=["img:latest"],
        held=["sha256:gone", "sha256:pinned"],
    )
    assert engine.loaded == [[f"{layers[2].diff_id.removeprefix('sha256:')}/layer.tar"]]
