"""Files to and from an engine that cannot see ours (builder/engine/transfer.py): what comes back
is the folder as the engine archived it, and nothing lands outside it."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from builder.core.errors import BuildError
from builder.engine.transfer import pack, unpack_into
from builder.store.layers import tar_directory


def _engine_archive(folder: Path) -> list[bytes]:
    """What get_archive gives for `folder`: its tree under its own name, in chunks."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as out:
        out.add(folder, arcname=folder.name)
    data = buffer.getvalue()
    return [data[i : i + 1000] for i in range(0, len(data), 1000)]


def test_a_folder_copied_back_packs_into_the_layer_a_mount_gives(tmp_path: Path) -> None:
    made = tmp_path / "made" / "opt" / "npm"  # what the step wrote, as if into a mount
    (made / "bin").mkdir(parents=True)
    (made / "lib.js").write_text("x")
    (made / "bin" / "tool").write_text("#!/bin/sh\n")
    (made / "bin" / "tool").chmod(0o755)
    os.link(made / "lib.js", made / "same.js")
    (made / "bin" / "link").symlink_to("../lib.js")
    made.chmod(0o750)
    back = tmp_path / "back" / "opt" / "npm"
    back.mkdir(parents=True)
    unpack_into(_engine_archive(made), back, what="test")
    one = tar_directory(tmp_path / "made", tmp_path / "one.tar", epoch=1)
    two = tar_directory(tmp_path / "back", tmp_path / "two.tar", epoch=1)
    assert one.diff_id == two.diff_id
    assert back.stat().st_mode & 0o777 == 0o750


def test_a_member_leaving_the_folder_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        out.addfile(tarfile.TarInfo("npm"), None)
        info = tarfile.TarInfo("npm/../../escape")
        out.addfile(info, io.BytesIO(b""))
    (tmp_path / "dest").mkdir()
    with pytest.raises(BuildError, match="outside the folder"):
        unpack_into([buffer.getvalue()], tmp_path / "dest", what="test")
    assert not (tmp_path / "escape").exists()


def test_nothing_is_written_through_a_symlink_out_of_the_folder(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        top = tarfile.TarInfo("npm")
        top.type = tarfile.DIRTYPE
        out.addfile(top)
        link = tarfile.TarInfo("npm/out")
        link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path)
        out.addfile(link)
        data = tarfile.TarInfo("npm/out/planted")
        out.addfile(data, io.BytesIO(b""))
    (tmp_path / "dest").mkdir()
    with pytest.raises(BuildError, match="outside the folder"):
        unpack_into([buffer.getvalue()], tmp_path / "dest", what="test")
    assert not (tmp_path / "planted").exists()


def test_pack_puts_each_source_at_its_target(tmp_path: Path) -> None:
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "req.txt").write_text("ruff\n")
    (tmp_path / "ca.crt").write_text("CERT")
    data = pack([(str(tmp_path / "inputs"), "/tmp/in"), (str(tmp_path / "ca.crt"), "/tmp/ca")])
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert sorted(archive.getnames()) == ["tmp/ca", "tmp/in", "tmp/in/req.txt"]
