"""Unpacking (builder/core/unpack.py): root stripping, modes, links, and nothing outside dest."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from builder.core.errors import BuildError
from builder.core.unpack import link_stays_inside, unpack
from tests.unit.conftest import Entry, exe, folder, symlink, write_tar, write_zip

RELEASE = [
    folder("tool-1.0"),
    folder("tool-1.0/bin"),
    exe("tool-1.0/bin/tool"),
    symlink("tool-1.0/bin/alias", "tool"),
    Entry(name="tool-1.0/share/README", data=b"read me\n", mode=0o600),
    Entry(name="tool-1.0/bin/tool-hard", hardlink="tool-1.0/bin/tool"),
    Entry(name="elsewhere/ignored", data=b"x"),
]


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


@pytest.mark.parametrize(("fmt", "xz"), [("tar.gz", False), ("tgz", False), ("tar.xz", True)])
def test_tar_strips_the_root_and_keeps_exec_bits_and_links(
    tmp_path: Path, fmt: str, xz: bool
) -> None:
    archive = write_tar(tmp_path / "a", RELEASE, xz=xz)
    dest = tmp_path / "out"
    unpack(archive, dest, fmt=fmt, root="tool-1.0")
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "bin",
        "bin/alias",
        "bin/tool",
        "bin/tool-hard",
        "share",
        "share/README",
    ]
    assert _mode(dest / "bin/tool") == 0o755
    assert _mode(dest / "share/README") == 0o644  # readable by the image's arbitrary UID
    assert (dest / "bin/alias").readlink().as_posix() == "tool"
    assert (dest / "bin/tool-hard").stat().st_ino == (dest / "bin/tool").stat().st_ino


def test_owners_and_setuid_bits_are_not_kept(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "a.tgz", [Entry(name="su", data=b"x", mode=0o4755)])
    unpack(archive, tmp_path / "out", fmt="tgz")
    extracted = tmp_path / "out" / "su"
    assert _mode(extracted) == 0o755
    assert extracted.stat().st_uid == os.getuid()


def test_zip_keeps_exec_bits_and_symlinks(tmp_path: Path) -> None:
    archive = write_zip(
        tmp_path / "a.whl",
        [
            exe("pkg/bin/node"),
            Entry(name="pkg/lib/cli.js", data=b"js", mode=0o644),
            symlink("pkg/bin/npm", "../lib/cli.js"),
            Entry(name="pkg-1.0.dist-info/RECORD", data=b""),
        ],
    )
    dest = tmp_path / "out"
    unpack(archive, dest, fmt="zip", root="pkg")
    assert _mode(dest / "bin/node") == 0o755
    assert _mode(dest / "lib/cli.js") == 0o644
    assert (dest / "bin/npm").readlink().as_posix() == "../lib/cli.js"
    assert (dest / "bin/npm").read_bytes() == b"js"
    assert not (dest / "pkg-1.0.dist-info").exists()


def test_raw_installs_the_file_as_an_executable(tmp_path: Path) -> None:
    download = tmp_path / "abc123"
    download.write_bytes(b"\x7fELF...")
    unpack(download, tmp_path / "bin", fmt="raw", target="kubectl")
    assert (tmp_path / "bin/kubectl").read_bytes() == b"\x7fELF..."
    assert _mode(tmp_path / "bin/kubectl") == 0o755


@pytest.mark.parametrize(
    "evil",
    [
        Entry(name="../escape", data=b"x"),
        Entry(name="ok/../../escape", data=b"x"),
        Entry(name="/etc/escape", data=b"x"),
        symlink("link", "../../etc/passwd"),
        symlink("sub/link", "/etc/passwd"),
        Entry(name="hard", hardlink="../outside"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink-up", "symlink-absolute", "hardlink"],
)
def test_a_member_leaving_dest_is_refused(tmp_path: Path, evil: Entry) -> None:
    archive = write_tar(tmp_path / "evil.tar.gz", [exe("fine"), evil])
    with pytest.raises(BuildError, match="refusing member") as caught:
        unpack(archive, tmp_path / "out", fmt="tar.gz")
    assert caught.value.exit_code == 5
    assert not (tmp_path / "escape").exists()


def test_a_zip_member_leaving_dest_is_refused(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "evil.zip", [Entry(name="../escape", data=b"x")])
    with pytest.raises(BuildError, match="leaves the archive"):
        unpack(archive, tmp_path / "out", fmt="zip")
    assert not (tmp_path / "escape").exists()


def test_nothing_is_written_through_a_symlink_that_leaves_dest(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "door").symlink_to(outside)  # e.g. left by an earlier step
    archive = write_tar(tmp_path / "a.tgz", [Entry(name="door/planted", data=b"x")])
    with pytest.raises(BuildError, match="through a symlink"):
        unpack(archive, dest, fmt="tgz")
    assert list(outside.iterdir()) == []


def test_link_stays_inside() -> None:
    assert link_stays_inside("bin/npm", "../lib/node_modules/npm/bin/npm-cli.js")
    assert not link_stays_inside("bin/npm", "../../etc/passwd")
    assert not link_stays_inside("npm", "/usr/bin/npm")


def test_an_empty_root_and_an_unknown_format_are_build_errors(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "a.tgz", RELEASE)
    with pytest.raises(BuildError, match=r"nothing under 'tool-2.0'"):
        unpack(archive, tmp_path / "out", fmt="tgz", root="tool-2.0")
    with pytest.raises(BuildError, match="unknown archive format 'rar'"):
        unpack(archive, tmp_path / "out", fmt="rar")


def test_a_corrupt_archive_is_a_build_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tar.xz"
    broken.write_bytes(b"not xz at all")
    with pytest.raises(BuildError, match="cannot extract it"):
        unpack(broken, tmp_path / "out", fmt="tar.xz")


def test_a_folder_reached_through_a_symlink_is_checked_every_time(tmp_path: Path) -> None:
    """`s -> t` makes `s/sub` lead to `t/sub`; once `t` is a link that resolves out of the tree
    (each link alone looks inside it), writing `s/sub/c` must be refused, however often
    `s/sub` was written to before."""
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("t/sub/a", "x")
        _zip_symlink(zf, "s", "t")
        zf.writestr("s/sub/b", "x")
        _zip_symlink(zf, "d1/l", "..")  # dest itself
        _zip_symlink(zf, "t", "d1/l/..")  # reads as d1, resolves to dest's parent
        zf.writestr("s/sub/c", "escaped")
    (tmp_path / "sub").mkdir()
    with pytest.raises(BuildError, match="leaves the tree"):
        unpack(archive, tmp_path / "dest", fmt="zip")
    assert not (tmp_path / "sub" / "c").exists()


def _zip_symlink(zf: zipfile.ZipFile, name: str, target: str) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, target)


def _zip_of(path: Path, members: dict[str, tuple[bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, (data, method) in members.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = method
            zf.writestr(info, data)
    return path


def test_zip_members_of_every_method_unpack_to_their_bytes(tmp_path: Path) -> None:
    """Stored and deflated members are inflated by ISA-L, others (bzip2) by zipfile."""
    big = bytes(range(256)) * 5000
    members = {
        "pkg/deflated.bin": (big, zipfile.ZIP_DEFLATED),
        "pkg/stored.bin": (b"as is", zipfile.ZIP_STORED),
        "pkg/bzip2.bin": (big[:1000], zipfile.ZIP_BZIP2),
        "pkg/empty": (b"", zipfile.ZIP_DEFLATED),
    }
    archive = _zip_of(tmp_path / "a.whl", members)
    dest = tmp_path / "out"
    unpack(archive, dest, fmt="zip", root="pkg")
    for name, (data, _) in members.items():
        assert (dest / name.removeprefix("pkg/")).read_bytes() == data


def test_a_damaged_zip_member_is_a_build_error(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    archive = _zip_of(tmp_path / "a.whl", {"pkg/a.bin": (data, zipfile.ZIP_DEFLATED)})
    raw = bytearray(archive.read_bytes())
    at = raw.index(b"pkg/a.bin") + len("pkg/a.bin") + 200  # inside the deflated data
    raw[at : at + 64] = bytes(64)
    archive.write_bytes(bytes(raw))
    with pytest.raises(BuildError, match=r"member pkg/a\.bin"):
        unpack(archive, tmp_path / "out", fmt="zip", root="pkg")
