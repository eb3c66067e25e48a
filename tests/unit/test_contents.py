"""store/contents.py: what a layer holds, file by file, and where two layers differ."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from builder.core.errors import CacheError
from builder.store.contents import differences, listing


def _tar(path: Path, files: dict[str, bytes], *, mode: int = 0o644, uid: int = 0) -> Path:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        folder = tarfile.TarInfo("usr/")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        archive.addfile(folder)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), mode, uid, uid
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("usr/link")
        link.type, link.linkname = tarfile.SYMTYPE, "bin/jq"
        archive.addfile(link)
    data = out.getvalue()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def test_a_listing_has_each_entry_with_its_kind_size_mode_owner_and_hash(tmp_path: Path) -> None:
    found = listing(_tar(tmp_path / "a.tar", {"usr/bin/jq": b"jq"}, mode=0o755, uid=7))
    assert sorted(found) == ["usr", "usr/bin/jq", "usr/link"]
    jq = found["usr/bin/jq"]
    assert (jq.kind, jq.size, jq.mode, jq.uid, jq.gid) == ("file", 2, 0o755, 7, 7)
    assert jq.sha256 == "sha256:" + hashlib.sha256(b"jq").hexdigest()
    assert found["usr/link"].kind == "symlink"
    assert found["usr/link"].link == "bin/jq"
    assert found["usr"].kind == "dir"


def test_a_gzip_layer_lists_as_its_tar_does(tmp_path: Path) -> None:
    files = {"usr/bin/jq": b"jq"}
    assert listing(_tar(tmp_path / "a.tar.gz", files)) == listing(_tar(tmp_path / "a.tar", files))


def test_differences_name_changed_added_and_removed_paths_only(tmp_path: Path) -> None:
    ours = listing(_tar(tmp_path / "a.tar", {"usr/a": b"1", "usr/b": b"2", "usr/c": b"3"}))
    theirs = listing(_tar(tmp_path / "b.tar", {"usr/a": b"1", "usr/b": b"two", "usr/d": b"4"}))
    found = differences(ours, theirs)
    assert [d.path for d in found] == ["usr/b", "usr/c", "usr/d"]
    changed, removed, added = found
    assert changed.ours is not None
    assert changed.theirs is not None
    assert (changed.ours.size, changed.theirs.size) == (1, 3)
    assert removed.theirs is None
    assert added.ours is None
    assert "absent" in removed.text()
    assert added.to_json()["ours"] is None
    assert changed.to_json()["theirs"]["mode"] == "0644"


def test_mode_and_owner_alone_make_a_difference(tmp_path: Path) -> None:
    ours = listing(_tar(tmp_path / "a.tar", {"usr/a": b"1"}))
    assert [
        d.path
        for d in differences(ours, listing(_tar(tmp_path / "m.tar", {"usr/a": b"1"}, mode=0o600)))
    ] == ["usr/a"]
    assert [
        d.path
        for d in differences(ours, listing(_tar(tmp_path / "o.tar", {"usr/a": b"1"}, uid=1000)))
    ] == ["usr/a"]
    assert differences(ours, ours) == []


def test_a_file_that_is_not_a_tar_is_a_cache_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(CacheError, match=r"bad\.tar"):
        listing(bad)
