"""A damaged cache: a truncated layer is a miss (the node rebuilds and replaces it), and a
layer whose bytes no longer match its name is caught before the engine gets it, named and
removed, here and in the store it is hard linked to."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from builder.core.errors import CacheError
from builder.image import assemble
from builder.store.cache import Cache, Layer, NodeEntry

KEY = "sha256:" + "b" * 64


def _cache(tmp_path: Path) -> Cache:
    cache = Cache(tmp_path / "cache", store=tmp_path / "store")
    cache.ensure()
    return cache


def _put(cache: Cache, body: bytes) -> Layer:
    diff_id = "sha256:" + hashlib.sha256(body).hexdigest()
    tar = cache.root / "tmp" / "layer.tar"
    tar.write_bytes(body)
    cache.store_layer(tar, diff_id)
    layer = Layer(diff_id=diff_id, size=len(body))
    cache.put(NodeEntry(name="system", key=KEY, layers=(layer,)))
    return layer


def test_a_truncated_layer_is_a_miss_and_its_rebuild_replaces_it(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    layer = _put(cache, b"x" * 1000)
    for copy in (cache.layer_path(layer.diff_id), tmp_path / "store" / "layers"):
        if copy.is_file():
            copy.write_bytes(b"x" * 500)  # the store's is the same file: both truncated
    assert cache.entry(KEY) is None, "a truncated layer was taken as whole"
    _put(cache, b"x" * 1000)  # what the rebuild of the node does
    assert cache.layer_path(layer.diff_id).stat().st_size == 1000
    assert cache.entry(KEY) is not None


def test_a_layer_whose_bytes_changed_is_refused_before_the_engine_takes_it(
    tmp_path: Path,
) -> None:
    cache = _cache(tmp_path)
    layer = _put(cache, b"y" * 1000)
    path = cache.layer_path(layer.diff_id)
    shared = tmp_path / "store" / "layers" / path.name
    assert shared.samefile(path)
    with path.open("r+b") as data:
        data.seek(10)
        data.write(b"z")  # same size, other bytes
    config = assemble.image_config(
        layers=[("system", layer)], env={}, platform="linux/amd64", epoch=0, labels={}
    )
    chunks = assemble.archive_chunks(config=config, layers=[layer], cache=cache, tags=[])
    with pytest.raises(CacheError) as caught:
        b"".join(chunks)
    message = str(caught.value)
    assert f"cache layer {path} is corrupt" in message
    assert "run the command again to rebuild the node" in message
    assert not path.exists()
    assert not shared.exists(), "the store kept the damaged file and would hand it back"
    assert cache.entry(KEY) is None  # so the next build rebuilds the node
