"""Loading an image writes only the layers the engine lacks, and falls back to all of them.

The engine is a recording fake: it reports the layer stacks of the images it holds and
records the member names of every archive it is asked to load.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from builder import assemble
from builder.cache import Cache, Layer
from builder.errors import BuildError
from builder.loading import IMAGE_LABEL, STAGE_LABEL, load_image


class RecordingEngine:
    """With `manifest_ids`, an engine of the containerd image store: what it loads gets an ID
    other than the config digest (here the config digest with a prefix)."""

    def __init__(
        self,
        stacks: dict[str, list[tuple[str, ...]]],
        *,
        refuse_partial: bool,
        manifest_ids: bool = False,
    ) -> None:
        self._stacks = stacks
        self._refuse_partial = refuse_partial
        self._manifest_ids = manifest_ids
        self._present: dict[str, str] = {}  # tag -> engine ID
        self.loaded: list[list[str]] = []
        self.inspected: list[tuple[str, ...]] = []
        self.tagged: list[str] = []
        self.config = ""

    def find_image(
        self, config_digest: str, *, tag: str, diff_ids: list[str], labels: Mapping[str, str]
    ) -> str | None:
        return self._present.get(tag)

    def layer_stacks(
        self, label: str, known: Mapping[str, tuple[str, ...]]
    ) -> dict[str, tuple[str, ...]]:
        self.inspected += [s for s in self._stacks.get(label, []) if _id(s) not in known]
        return {_id(stack): stack for stack in self._stacks.get(label, [])}

    def load(self, archive: Iterable[bytes]) -> None:
        with tarfile.open(fileobj=io.BytesIO(b"".join(archive))) as tar:
            names = sorted(n for n in tar.getnames() if n.endswith("layer.tar"))
            manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        self.loaded.append(names)
        if self._refuse_partial and len(names) < 3:
            msg = "docker load refused the image: layer.tar: no such file"
            raise BuildError(msg)
        config = "sha256:" + manifest[0]["Config"].removeprefix("blobs/sha256/").split(".")[0]
        for tag in manifest[0]["RepoTags"]:
            self._present[tag] = ("manifest-of-" if self._manifest_ids else "") + config

    def tag(self, image: str, repository: str, tag: str) -> None:
        self.tagged.append(f"{image} {repository}:{tag}")


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


def _load(engine: RecordingEngine, cache: Cache, layers: list[Layer]) -> str:
    config = assemble.image_config(
        layers=[("node", la) for la in layers], env={}, platform="linux/amd64", epoch=0, labels={}
    )
    engine.config = config.image_id
    return load_image(engine=engine, cache=cache, config=config, layers=layers, tags=["img:latest"])  # type: ignore[arg-type]


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
    assert engine.tagged == [f"{engine.config} img:latest"]


def test_on_the_containerd_store_the_image_is_named_and_tagged_by_the_engines_id(
    cache: Cache,
) -> None:
    engine = RecordingEngine({}, refuse_partial=False, manifest_ids=True)
    found = _load(engine, cache, _layers(cache))
    assert found == f"manifest-of-{engine.config}"
    assert engine.tagged == [f"manifest-of-{engine.config} img:latest"]
    assert _load(engine, cache, _layers(cache)) == found
    assert len(engine.loaded) == 1, "an image the engine holds under its own ID is not loaded again"


def test_an_engine_that_loads_but_does_not_list_the_image_is_an_error(cache: Cache) -> None:
    engine = RecordingEngine({}, refuse_partial=False)
    engine.find_image = lambda *a, **k: None  # type: ignore[method-assign]
    with pytest.raises(BuildError, match="lists no image of config"):
        _load(engine, cache, _layers(cache))


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
