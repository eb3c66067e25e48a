"""The user-wide store: a node one project built is a cache hit in another (issue 9).

Real folders, real hard links and renames; the only stand-in is `os.link` failing with
EXDEV, to see the copy taken when the store sits on another filesystem.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
from pathlib import Path

import pytest

from builder.actions.gc import collect
from builder.core.errors import CacheError
from builder.model.lockfile import Lock
from builder.store.cache import Cache, Layer, NodeEntry, default_store_dir

KEY = "sha256:" + "a" * 64


def _layer(cache: Cache, body: bytes) -> Layer:
    """A layer file in `cache`, named (like a real one) by the sha256 of its bytes."""
    diff_id = "sha256:" + hashlib.sha256(body).hexdigest()
    cache.layer_path(diff_id).write_bytes(body)
    return Layer(diff_id=diff_id, size=len(body))


def _built(cache: Cache, key: str = KEY, bodies: tuple[bytes, ...] = (b"one", b"two")) -> NodeEntry:
    """What the executor does after building a node: layers in place, then `put`."""
    layers = tuple(_layer(cache, body) for body in bodies)
    entry = NodeEntry(name="system", key=key, layers=layers, env={"PATH": "/x"}, seconds=3.0)
    cache.put(entry)
    return entry


def _project(tmp_path: Path, name: str, store: Path) -> Cache:
    cache = Cache(tmp_path / name / "cache", store=store)
    cache.ensure()
    return cache


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_the_store_is_the_env_var_else_beside_the_downloads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SANDBOX_STORE_DIR", str(tmp_path / "mine"))
    assert default_store_dir() == tmp_path / "mine"
    assert Cache(tmp_path / "cache").store == tmp_path / "mine"
    monkeypatch.delenv("SANDBOX_STORE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_store_dir() == tmp_path / "xdg" / "sandbox-builder" / "store"


def test_put_shares_the_node_through_hard_links(tmp_path: Path) -> None:
    store = tmp_path / "store"
    a = _project(tmp_path, "a", store)
    entry = _built(a)
    for layer in entry.layers:
        mine = a.layer_path(layer.diff_id)
        shared = store / "layers" / mine.name
        assert shared.read_bytes() == mine.read_bytes()
        assert shared.stat().st_ino == mine.stat().st_ino
    data = json.loads((store / "nodes" / f"{'a' * 64}.json").read_text())
    assert data["key"] == KEY
    assert [la["diff_id"] for la in data["layers"]] == [la.diff_id for la in entry.layers]


def test_another_project_gets_the_node_from_the_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    a, b = _project(tmp_path, "a", store), _project(tmp_path, "b", store)
    built = _built(a)
    assert b.entry("sha256:" + "f" * 64) is None  # a key nobody built is still a miss

    found = b.entry(KEY)

    assert found == built
    for layer in built.layers:
        theirs = b.layer_path(layer.diff_id)
        assert theirs.stat().st_ino == a.layer_path(layer.diff_id).stat().st_ino
    assert (b.root / "nodes" / f"{'a' * 64}.json").exists()
    # Now B has it itself: the store can go and B still hits.
    for path in (store / "nodes").iterdir():
        path.unlink()
    assert b.entry(KEY) == built


def test_a_store_on_another_filesystem_is_copied_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    a, b = _project(tmp_path, "a", store), _project(tmp_path, "b", store)

    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    built = _built(a)
    assert b.entry(KEY) == built
    for layer in built.layers:
        mine, theirs = a.layer_path(layer.diff_id), b.layer_path(layer.diff_id)
        assert theirs.read_bytes() == mine.read_bytes()
        assert theirs.stat().st_ino != mine.stat().st_ino
        assert (store / "layers" / mine.name).stat().st_ino != mine.stat().st_ino
    assert _leftovers(tmp_path) == []


def test_an_entry_is_written_only_after_all_its_layers(tmp_path: Path) -> None:
    store = tmp_path / "store"
    a, b = _project(tmp_path, "a", store), _project(tmp_path, "b", store)
    built = _built(a)
    gone = store / "layers" / a.layer_path(built.layers[1].diff_id).name
    gone.unlink()  # as if a store layer were lost

    assert b.entry(KEY) is None
    assert not (b.root / "nodes" / f"{'a' * 64}.json").exists()

    # A project whose layers cannot go into the store leaves no store entry either.
    c = _project(tmp_path, "c", tmp_path / "store-c")
    (tmp_path / "store-c").mkdir()
    (tmp_path / "store-c" / "layers").write_text("not a folder")
    _built(c, key="sha256:" + "c" * 64)
    assert not (tmp_path / "store-c" / "nodes").exists()


def test_a_truncated_or_damaged_store_entry_is_a_miss_then_rewritten(tmp_path: Path) -> None:
    store = tmp_path / "store"
    a, b = _project(tmp_path, "a", store), _project(tmp_path, "b", store)
    built = _built(a)
    shared = store / "nodes" / f"{'a' * 64}.json"
    shared.write_text('{"version": 1, "name": "sys')  # not a whole entry
    assert b.entry(KEY) is None

    shared.write_text(json.dumps({"version": 1, "name": "system"}))  # fields missing
    assert b.entry(KEY) is None

    _built(a)  # a's next put of the key (a rebuild after gc, say) repairs the store
    layer = store / "layers" / a.layer_path(built.layers[0].diff_id).name
    layer.unlink()
    layer.write_bytes(b"on")  # a layer cut short is not used either
    assert b.entry(KEY) is None
    layer.unlink()
    os.link(a.layer_path(built.layers[0].diff_id), layer)
    assert b.entry(KEY) == built


def test_a_corrupt_project_entry_is_still_an_error_naming_the_file(tmp_path: Path) -> None:
    cache = _project(tmp_path, "a", tmp_path / "store")
    (cache.root / "nodes" / f"{'a' * 64}.json").write_text("{")
    with pytest.raises(CacheError, match=r"nodes/a{64}\.json"):
        cache.entry(KEY)


@pytest.mark.parametrize("kind", ["a file", "under a file"])
def test_an_unusable_store_is_ignored_silently(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the store should be")
    store = blocker if kind == "a file" else blocker / "store"
    a, b = _project(tmp_path, "a", store), _project(tmp_path, "b", store)

    built = _built(a)  # no exception: the build goes on without sharing

    assert a.entry(KEY) == built
    assert b.entry(KEY) is None
    assert capsys.readouterr() == ("", "")
    assert blocker.read_text() == "a file where the store should be"


def test_a_store_that_is_the_cache_dir_itself_changes_nothing(tmp_path: Path) -> None:
    cache = _project(tmp_path, "a", tmp_path / "a" / "cache")
    built = _built(cache)
    assert cache.entry(KEY) == built
    assert sorted(p.name for p in cache.root.iterdir()) == ["layers", "logs", "nodes", "tmp"]


def test_a_node_gc_dropped_comes_back_from_the_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    cache = _project(tmp_path, "a", store)
    built = _built(cache)
    nothing = Lock(spec_hash="sha256:s", source_date_epoch=0, platforms={"linux/amd64": {}})

    result = collect(
        cache=cache, spec_path=tmp_path / "a" / "sandbox.toml", image_name="t/a", lock=nothing,
        engine=None,
    )  # fmt: skip

    assert (result.entries, result.layers) == (1, 2)
    assert list((cache.root / "layers").glob("*.tar")) == []
    assert len(list((store / "layers").glob("*.tar"))) == 2, "gc reached into the store"
    assert cache.entry(KEY) == built  # the next build finds it cached, from the store
    assert len(list((cache.root / "layers").glob("*.tar"))) == 2


def test_many_projects_sharing_one_node_at_once_leave_a_whole_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    projects = [_project(tmp_path, f"p{i}", store) for i in range(8)]
    bodies = (b"base" * 5000, b"system" * 7000)
    errors: list[BaseException] = []
    found: list[NodeEntry | None] = []
    start = threading.Barrier(len(projects))

    def work(i: int, cache: Cache) -> None:
        try:
            start.wait()
            if i % 2:
                _built(cache, bodies=bodies)  # builders put the node ...
            else:
                for _ in range(50):  # ... while the others look it up
                    found.append(cache.entry(KEY))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(projects)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert all(f is None or f.key == KEY for f in found)
    data = json.loads((store / "nodes" / f"{'a' * 64}.json").read_text())
    for layer, body in zip(data["layers"], bodies, strict=True):
        assert (store / "layers" / f"{layer['diff_id'][7:]}.tar").read_bytes() == body
    assert _leftovers(store) == []
    assert all(c.entry(KEY) is not None for c in projects)


def _tar_layer(cache: Cache, names: list[str]) -> Layer:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in names:
            tar.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    data = buffer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    cache.layer_path(diff_id).parent.mkdir(parents=True, exist_ok=True)
    cache.layer_path(diff_id).write_bytes(data)
    return Layer(diff_id=diff_id, size=len(data))


def test_a_layers_entries_are_counted_once_then_remembered(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    three, one = _tar_layer(cache, ["a", "b", "c"]), _tar_layer(cache, ["x"])
    assert cache.layer_entries([three, one]) == {three.diff_id: 3, one.diff_id: 1}
    cache.layer_path(three.diff_id).write_bytes(b"")  # a count never changes: not read again
    assert cache.layer_entries([three]) == {three.diff_id: 3}


def test_a_layer_that_is_no_tar_is_dropped_with_an_error_saying_so(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    bad = Layer(diff_id="sha256:" + "1" * 64, size=5)
    cache.layer_path(bad.diff_id).write_bytes(b"x" * 700)
    with pytest.raises(CacheError, match="cannot be read as a tar"):
        cache.layer_entries([bad])
    assert not cache.layer_path(bad.diff_id).exists()
