"""Loading an image writes only the layers the engine lacks, and falls back to all of them.

The engine is a recording fake: it reports the layer stacks of the images it holds and
records the member names of every archive it is asked to load.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from builder import assemble
from builder.cache import Cache, Layer
from builder.errors import BuildError
from builder.loading import IMAGE_LABEL, STAGE_LABEL, load_image


class RecordingEngine:
    def __init__(self, stacks: dict[str, list[tuple[str, ...]]], *, refuse_partial: bool) -> None:
        self._stacks = stacks
        self._refuse_partial = refuse_partial
        self.loaded: list[list[str]] = []
        self.inspected: list[tuple[str, ...]] = []
        self.tagged: list[str] = []

    def image_id(self, ref: str) -> str | None:
        return None

    def layer_stacks(
        self, label: str, known: Mapping[str, tuple[str, ...]]
    ) -> dict[str, tuple[str, ...]]:
        self.inspected += [s for s in self._stacks.get(label, []) if _id(s) not in known]
        return {_id(stack): stack for stack in self._stacks.get(label, [])}

    def load(self, archive: Iterable[bytes]) -> None:
        with tarfile.open(fileobj=io.BytesIO(b"".join(archive))) as tar:
            names = sorted(n for n in tar.getnames() if n.endswith("layer.tar"))
        self.loaded.append(names)
        if self._refuse_partial and len(names) < 3:
            msg = "docker load refused the image: layer.tar: no such file"
            raise BuildError(msg)

    def tag(self, image: str, repository: str, tag: str) -> None:
        self.tagged.append(f"{repository}:{tag}")


def _id(stack: tuple[str, ...]) -> str:
    """A made-up image ID for a stack (the fake's images are their stacks)."""
    return "sha256:" + str(abs(hash(stack)))


def _layers(cache: Cache) -> list[Layer]:
    layers = []
    for digit in "123":
        body = digit.encode() * 10
        diff_id = "sha256:" + hashlib.sha256(body).hexdigest()
        cache.layer_path(diff_id).write_bytes(body)
        layers.append(Layer(diff_id=diff_id, size=10))
    return layers


def _load(engine: RecordingEngine, cache: Cache, layers: list[Layer]) -> None:
    config = assemble.image_config(
        layers=[("node", la) for la in layers], env={}, platform="linux/amd64", epoch=0, labels={}
    )
    load_image(engine=engine, cache=cache, config=config, layers=layers, tags=["img:latest"])  # type: ignore[arg-type]


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    cache = Cache(tmp_path / "cache", downloads=tmp_path / "downloads")
    cache.ensure()
    return cache


def test_only_layers_above_the_longest_present_stack_are_written(cache: Cache) -> None:
    layers = _layers(cache)
    ids = tuple(la.diff_id for la in layers)
    other: tuple[str, ...] = (ids[0], ids[1], "sha256:" + "9" * 64)
    stacks = {STAGE_LABEL: [ids[:1]], IMAGE_LABEL: [other]}
    engine = RecordingEngine(stacks, refuse_partial=False)
    _load(engine, cache, layers)
    assert engine.loaded == [[f"{ids[2].removeprefix('sha256:')}/layer.tar"]]
    assert engine.tagged == ["img:latest"]


def test_an_engine_refusing_the_partial_archive_gets_the_full_one(cache: Cache) -> None:
    layers = _layers(cache)
    engine = RecordingEngine({STAGE_LABEL: [(layers[0].diff_id,)]}, refuse_partial=True)
    _load(engine, cache, layers)
    assert [len(names) for names in engine.loaded] == [2, 3]


def test_a_refused_full_archive_is_an_error(cache: Cache) -> None:
    layers = _layers(cache)[:2]
    engine = RecordingEngine({}, refuse_partial=True)
    with pytest.raises(BuildError, match="refused"):
        _load(engine, cache, layers)


def test_an_image_is_inspected_once_for_all_loads(cache: Cache) -> None:
    layers = _layers(cache)
    ids = tuple(la.diff_id for la in layers)
    engine = RecordingEngine({STAGE_LABEL: [ids[:1]], IMAGE_LABEL: [ids[:2]]}, refuse_partial=False)
    _load(engine, cache, layers)
    assert sorted(engine.inspected) == sorted([ids[:1], ids[:2]])
    engine.inspected.clear()
    _load(engine, cache, layers)
    assert engine.inspected == [], "the stacks are remembered in cache/stacks.json"
    assert engine.loaded[-1] == [f"{ids[2].removeprefix('sha256:')}/layer.tar"]
