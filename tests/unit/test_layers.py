"""Layer tars (store/layers.py): normalized, reproducible, and confined to a node's prefix."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tarfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from builder.core.errors import BuildError
from builder.store.diffs import UpperDir
from builder.store.layers import LayerFile, check_changes, listing, normalize_tar, tar_directory

EPOCH = 1_700_000_000
FUTURE = EPOCH + 86_400
PAST = EPOCH - 86_400
PREFIX = "/opt/sandbox/runtime/node/"


@dataclass
class Entry:
    name: str
    data: bytes | None = None  # a regular file when set
    kind: bytes = tarfile.REGTYPE
    link: str = ""
    mtime: int = FUTURE
    uid: int = 0
    uname: str = "root"
    mode: int = 0o644
    pax: dict[str, str] = field(default_factory=dict)


def directory(name: str) -> Entry:
    return Entry(name=name, kind=tarfile.DIRTYPE, mode=0o755)


def write_tar(path: Path, entries: list[Entry], fmt: int = tarfile.GNU_FORMAT) -> Path:
    with tarfile.open(path, "w", format=fmt) as out:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type, info.linkname, info.mtime, info.mode = e.kind, e.link, e.mtime, e.mode
            info.uid = info.gid = e.uid
            info.uname = info.gname = e.uname
            info.pax_headers = dict(e.pax)
            if e.data is not None:
                info.size = len(e.data)
            out.addfile(info, io.BytesIO(e.data) if e.data is not None else None)
    return path


def members(layer: LayerFile | Path) -> list[tarfile.TarInfo]:
    path = layer.path if isinstance(layer, LayerFile) else layer
    with tarfile.open(path) as tar:
        return tar.getmembers()


def names(layer: LayerFile) -> list[str]:
    return [m.name for m in members(layer)]


def normalize(tmp_path: Path, entries: list[Entry], *, prefix: str | None = None) -> LayerFile:
    source = write_tar(tmp_path / "source.tar", entries)
    return normalize_tar(source, tmp_path / "layer.tar", epoch=EPOCH, prefix=prefix, node="node")


ROOTFS = [
    directory("usr"),
    directory("usr/bin"),
    Entry("usr/bin/zz", b"#!/bin/sh\n", mode=0o755, uid=1000, uname="agent"),
    Entry("usr/bin/aa", b"aa\n", mtime=PAST),
    directory("etc"),
    Entry("etc/os-release", b"ID=debian\n"),
    directory("var"),
    directory("var/log"),
    Entry("var/log/x", b"log line\n"),
    directory("var/lib"),
    directory("var/lib/apt"),
    directory("var/lib/apt/lists"),
    Entry("var/lib/apt/lists/y", b"Packages\n"),
    directory("tmp"),
    Entry("tmp/z", b"scratch\n"),
    directory("root"),
    directory("root/.cache"),
    Entry("root/.cache/pip", b"wheel\n"),
]


# -- normalize_tar ------------------------------------------------------------------------


def test_entries_come_out_sorted(tmp_path: Path) -> None:
    layer = normalize(tmp_path, ROOTFS)

    assert names(layer) == sorted(names(layer))
    assert "usr/bin/aa" in names(layer)


def test_mtimes_are_clamped_to_the_epoch(tmp_path: Path) -> None:
    layer = normalize(tmp_path, ROOTFS)

    mtimes = {m.name: m.mtime for m in members(layer)}
    assert mtimes["usr/bin/zz"] == EPOCH
    assert mtimes["usr/bin/aa"] == PAST
    assert max(mtimes.values()) == EPOCH


def test_owner_names_are_dropped_and_numeric_owners_kept(tmp_path: Path) -> None:
    layer = normalize(tmp_path, ROOTFS)

    by_name = {m.name: m for m in members(layer)}
    assert {(m.uname, m.gname) for m in by_name.values()} == {("", "")}
    assert (by_name["usr/bin/zz"].uid, by_name["usr/bin/zz"].gid) == (1000, 1000)
    assert by_name["usr/bin/zz"].mode == 0o755


def test_scratch_files_are_dropped_but_their_folders_kept(tmp_path: Path) -> None:
    got = set(names(normalize(tmp_path, ROOTFS)))

    assert {"var/log/x", "var/lib/apt/lists/y", "tmp/z", "root/.cache/pip"}.isdisjoint(got)
    assert {"var/log", "var/lib/apt/lists", "tmp", "root/.cache"} <= got
    assert {"usr/bin/zz", "etc/os-release"} <= got


def test_file_contents_survive(tmp_path: Path) -> None:
    layer = normalize(tmp_path, ROOTFS)

    with tarfile.open(layer.path) as tar:
        data = tar.extractfile("usr/bin/zz")
        assert data is not None
        assert data.read() == b"#!/bin/sh\n"


def test_whiteouts_of_scratch_files_are_dropped(tmp_path: Path) -> None:
    layer = normalize(
        tmp_path,
        [
            directory("var"),
            directory("var/log"),
            Entry("var/log/.wh.old.log", b""),
            directory("etc"),
            Entry("etc/.wh.motd", b""),
        ],
    )

    assert names(layer) == ["etc", "etc/.wh.motd", "var", "var/log"]


def test_hard_link_to_a_later_name_is_rewritten_to_point_backwards(tmp_path: Path) -> None:
    # In the source the data sits in b/file; sorting puts a/link first.
    layer = normalize(
        tmp_path,
        [
            directory("b"),
            Entry("b/file", b"shared data\n"),
            directory("a"),
            Entry("a/link", kind=tarfile.LNKTYPE, link="b/file"),
            Entry("c/also", kind=tarfile.LNKTYPE, link="b/file"),
        ],
    )

    seen: set[str] = set()
    for member in members(layer):
        if member.islnk():
            assert member.linkname in seen, f"{member.name} -> {member.linkname} points forward"
        seen.add(member.name)
    out = tmp_path / "out"
    with tarfile.open(layer.path) as tar:
        tar.extractall(out, filter="data")
    for name in ("a/link", "b/file", "c/also"):
        assert (out / name).read_bytes() == b"shared data\n"
    assert (out / "a/link").samefile(out / "b/file")
    assert (out / "c/also").samefile(out / "b/file")


def test_hard_link_to_a_scratch_file_keeps_its_data(tmp_path: Path) -> None:
    layer = normalize(
        tmp_path,
        [
            directory("tmp"),
            Entry("tmp/wheel", b"installed from a cache in /tmp\n"),
            directory("usr"),
            Entry("usr/lib", kind=tarfile.LNKTYPE, link="tmp/wheel"),
        ],
    )

    out = tmp_path / "out"
    with tarfile.open(layer.path) as tar:
        tar.extractall(out, filter="data")
    assert (out / "usr/lib").read_bytes() == b"installed from a cache in /tmp\n"


def test_same_input_gives_the_same_diff_id(tmp_path: Path) -> None:
    source = write_tar(tmp_path / "source.tar", ROOTFS)

    first = normalize_tar(source, tmp_path / "1.tar", epoch=EPOCH, prefix=None, node="base")
    second = normalize_tar(source, tmp_path / "2.tar", epoch=EPOCH, prefix=None, node="base")

    assert first.diff_id == second.diff_id
    assert first.diff_id == "sha256:" + hashlib.sha256(first.path.read_bytes()).hexdigest()
    assert first.size == first.path.stat().st_size


def test_order_times_owner_names_and_atimes_do_not_change_the_diff_id(tmp_path: Path) -> None:
    one = write_tar(tmp_path / "one.tar", ROOTFS)
    # Reversed, built later, by another user name, with access times recorded.
    shuffled = [
        replace(e, mtime=FUTURE + 1000, uname="someone", pax={"atime": "1.5", "ctime": "2.5"})
        if e.mtime > EPOCH
        else e
        for e in reversed(ROOTFS)
    ]
    two = write_tar(tmp_path / "two.tar", shuffled, fmt=tarfile.PAX_FORMAT)

    a = normalize_tar(one, tmp_path / "a.tar", epoch=EPOCH, prefix=None, node="base")
    b = normalize_tar(two, tmp_path / "b.tar", epoch=EPOCH, prefix=None, node="base")

    assert a.diff_id == b.diff_id


def test_xattrs_are_kept_and_other_pax_headers_dropped(tmp_path: Path) -> None:
    source = write_tar(
        tmp_path / "source.tar",
        [
            Entry(
                "ping",
                b"\x7fELF",
                pax={"SCHILY.xattr.security.capability": "cap", "atime": "5.5", "ctime": "6.5"},
            )
        ],
        fmt=tarfile.PAX_FORMAT,
    )

    layer = normalize_tar(source, tmp_path / "layer.tar", epoch=EPOCH, prefix=None, node="s")

    (ping,) = members(layer)
    assert ping.pax_headers.get("SCHILY.xattr.security.capability") == "cap"
    assert "atime" not in ping.pax_headers
    assert "ctime" not in ping.pax_headers


# -- the prefix rule ----------------------------------------------------------------------

NODE_TREE = [
    directory("opt"),
    directory("opt/sandbox"),
    directory("opt/sandbox/runtime"),
    directory("opt/sandbox/runtime/node"),
    directory("opt/sandbox/runtime/node/bin"),
    Entry("opt/sandbox/runtime/node/bin/node", b"\x7fELF", mode=0o755),
]


def test_a_node_writing_only_under_its_prefix_passes(tmp_path: Path) -> None:
    layer = normalize(tmp_path, NODE_TREE, prefix=PREFIX)

    assert names(layer) == [e.name for e in NODE_TREE]


def test_scratch_a_node_leaves_behind_is_dropped_not_refused(tmp_path: Path) -> None:
    # A container diff lists every folder whose contents changed, so a step that used /tmp
    # and npm's cache yields these entries besides its own files.
    scratch = [
        directory("tmp"),
        Entry("tmp/npm-1234/x", b"."),
        directory("root"),
        directory("root/.npm"),
        Entry("root/.npm/_cacache", b"."),
    ]

    layer = normalize(tmp_path, NODE_TREE + scratch, prefix=PREFIX)

    assert names(layer) == [e.name for e in NODE_TREE]


@pytest.mark.parametrize(
    "outside",
    [
        Entry("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        Entry("usr/local/bin/node", b"\x7fELF"),
        Entry("opt/sandbox/runtime/nodejs/x", b"sibling with a common prefix"),
        Entry("opt/sandbox/runtime", b"a file where the parent folder belongs"),
        Entry("etc/.wh.shadow", b""),
    ],
    ids=lambda e: e.name,
)
def test_a_file_outside_the_prefix_fails_naming_it(tmp_path: Path, outside: Entry) -> None:
    tree = [e for e in NODE_TREE if e.name != outside.name] + [outside]

    with pytest.raises(BuildError) as caught:
        normalize(tmp_path, tree, prefix=PREFIX)

    assert caught.value.exit_code == 5
    message = str(caught.value)
    assert f"node wrote outside its prefix {PREFIX}: " in message
    listed = message.split(f"{PREFIX}: ", 1)[1]
    assert listed.startswith(f"/{outside.name}")
    assert "/opt/sandbox/runtime/node/bin/node" not in listed
    assert not (tmp_path / "layer.tar").exists()


# -- tar_directory ------------------------------------------------------------------------


def make_tree(root: Path, mtime: int = FUTURE) -> Path:
    for folder in ("usr/bin", "etc", "var/log", "var/lib/apt/lists", "tmp", "b"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    files = {
        "usr/bin/tool": b"#!/bin/sh\necho hi\n",
        "etc/os-release": b"ID=debian\n",
        "var/log/x": b"log\n",
        "var/lib/apt/lists/y": b"Packages\n",
        "tmp/z": b"scratch\n",
        "b/zz-data": b"linked data\n",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    (root / "usr/bin/tool").chmod(0o755)
    # A hard link named so it sorts before the file it was made from.
    if not (root / "b/aa-link").exists():
        os.link(root / "b/zz-data", root / "b/aa-link")
        (root / "usr/bin/sh").symlink_to("tool")
    for path in [root, *root.rglob("*")]:
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    return root


def test_tar_directory_is_sorted_clamped_and_anonymous(tmp_path: Path) -> None:
    layer = tar_directory(make_tree(tmp_path / "root"), tmp_path / "layer.tar", epoch=EPOCH)

    got = members(layer)
    assert [m.name for m in got] == sorted(m.name for m in got)
    assert {m.mtime for m in got} == {EPOCH}
    assert {(m.uname, m.gname) for m in got} == {("", "")}
    by_name = {m.name: m for m in got}
    assert by_name["usr/bin/sh"].issym()
    assert by_name["usr/bin/sh"].linkname == "tool"
    assert by_name["usr/bin/tool"].mode == 0o755


def test_tar_directory_drops_scratch_files_but_keeps_their_folders(tmp_path: Path) -> None:
    got = set(names(tar_directory(make_tree(tmp_path / "root"), tmp_path / "l.tar", epoch=EPOCH)))

    assert {"var/log/x", "var/lib/apt/lists/y", "tmp/z"}.isdisjoint(got)
    assert {"var/log", "var/lib/apt/lists", "tmp", "etc/os-release", "usr/bin/tool"} <= got


def test_tar_directory_hard_links_point_backwards_and_extract(tmp_path: Path) -> None:
    layer = tar_directory(make_tree(tmp_path / "root"), tmp_path / "layer.tar", epoch=EPOCH)

    by_name = {m.name: m for m in members(layer)}
    assert by_name["b/aa-link"].isreg()
    assert by_name["b/zz-data"].islnk()
    assert by_name["b/zz-data"].linkname == "b/aa-link"
    out = tmp_path / "out"
    with tarfile.open(layer.path) as tar:
        tar.extractall(out, filter="data")
    assert (out / "b/zz-data").read_bytes() == b"linked data\n"
    assert (out / "b/aa-link").samefile(out / "b/zz-data")
    assert (out / "usr/bin/tool").read_bytes() == b"#!/bin/sh\necho hi\n"


def test_tar_directory_same_tree_gives_the_same_diff_id(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "root")

    first = tar_directory(tree, tmp_path / "1.tar", epoch=EPOCH)
    second = tar_directory(tree, tmp_path / "2.tar", epoch=EPOCH)
    # Touching every file again (a later debootstrap run) changes nothing either.
    make_tree(tree, mtime=FUTURE + 3600)
    third = tar_directory(tree, tmp_path / "3.tar", epoch=EPOCH)

    assert first.diff_id == second.diff_id == third.diff_id


def test_tar_directory_owns_every_entry_by_root_whoever_made_the_tree(tmp_path: Path) -> None:
    """A client running as uid 1001 packs the same bytes as one running as root."""
    as_root = make_tree(tmp_path / "a")
    as_user = make_tree(tmp_path / "b")
    for path in [as_user, *as_user.rglob("*")]:
        os.chown(path, 1001, 1001, follow_symlinks=False)

    mine = tar_directory(as_user, tmp_path / "user.tar", epoch=EPOCH)

    assert {(m.uid, m.gid) for m in members(mine)} == {(0, 0)}
    assert mine.diff_id == tar_directory(as_root, tmp_path / "root.tar", epoch=EPOCH).diff_id


def test_tar_directory_keeps_a_rootfs_owners_when_asked(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "root")
    os.chown(tree / "etc/os-release", 0, 42)  # as debootstrap leaves /etc/shadow: root:shadow

    layer = tar_directory(tree, tmp_path / "layer.tar", epoch=EPOCH, keep_owners=True)

    by_name = {m.name: m for m in members(layer)}
    assert (by_name["etc/os-release"].uid, by_name["etc/os-release"].gid) == (0, 42)


def _raw_diff(upper: Path, dest: Path) -> Path:
    """The upper dir's diff written out as a tar, as `docker commit` + save would give it."""
    diff = UpperDir(upper)
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as out:
        for info in diff.getmembers():
            data = diff.extractfile(info)
            out.addfile(info, data)
            if data is not None:
                data.close()
    return dest


def test_an_overlay_upper_dir_becomes_the_diff_docker_would_commit(tmp_path: Path) -> None:
    """Whiteouts (0/0 character devices), opaque folders, hard links and file capabilities,
    made the way overlayfs records them (needs root, as the build itself does)."""
    upper = tmp_path / "upper"
    (upper / "etc" / "gone-dir").mkdir(parents=True)
    (upper / "usr" / "bin").mkdir(parents=True)
    os.mknod(upper / "etc" / "removed", 0o600 | 0o020000, os.makedev(0, 0))
    os.setxattr(upper / "etc" / "gone-dir", "trusted.overlay.opaque", b"y")
    (upper / "usr" / "bin" / "ping").write_bytes(b"ping")
    cap_net_raw = struct.pack("<5I", 0x02000001, 1 << 13, 0, 0, 0)  # vfs_cap_data, rev. 2
    os.setxattr(upper / "usr" / "bin" / "ping", "security.capability", cap_net_raw)
    os.link(upper / "usr" / "bin" / "ping", upper / "usr" / "bin" / "ping6")
    raw = _raw_diff(upper, tmp_path / "diff.tar")
    with tarfile.open(raw) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {
        "etc",
        "etc/.wh.removed",
        "etc/gone-dir",
        "etc/gone-dir/.wh..wh..opq",
        "usr",
        "usr/bin",
        "usr/bin/ping",
        "usr/bin/ping6",
    }
    assert members["etc/.wh.removed"].isreg()
    assert members["usr/bin/ping6"].islnk()
    assert members["usr/bin/ping6"].linkname == "usr/bin/ping"
    capability = members["usr/bin/ping"].pax_headers["SCHILY.xattr.security.capability"]
    assert capability.encode("utf-8", "surrogateescape") == cap_net_raw
    assert not any("trusted.overlay" in k for m in members.values() for k in m.pax_headers)
    layer = normalize_tar(raw, tmp_path / "layer.tar", epoch=0, prefix=None, node="system")
    with tarfile.open(layer.path) as tar:
        assert "etc/.wh.removed" in tar.getnames()


def test_an_upper_dir_read_in_one_pass_gives_the_layer_of_its_tar(tmp_path: Path) -> None:
    """`capture` hands normalize the upper dir itself (`UpperDir`), no raw tar written."""
    upper = tmp_path / "upper"
    (upper / "etc" / "gone-dir").mkdir(parents=True)
    (upper / "usr" / "bin").mkdir(parents=True)
    os.mknod(upper / "etc" / "removed", 0o600 | 0o020000, os.makedev(0, 0))
    os.setxattr(upper / "etc" / "gone-dir", "trusted.overlay.opaque", b"y")
    (upper / "usr" / "bin" / "ping").write_bytes(b"ping" * 1000)
    cap_net_raw = struct.pack("<5I", 0x02000001, 1 << 13, 0, 0, 0)
    os.setxattr(upper / "usr" / "bin" / "ping", "security.capability", cap_net_raw)
    os.link(upper / "usr" / "bin" / "ping", upper / "usr" / "bin" / "ping6")
    (upper / "usr" / "bin" / "link").symlink_to("ping")
    raw = _raw_diff(upper, tmp_path / "diff.tar")
    two_pass = normalize_tar(raw, tmp_path / "a.tar", epoch=EPOCH, prefix=None, node="system")
    one_pass = normalize_tar(
        UpperDir(upper), tmp_path / "b.tar", epoch=EPOCH, prefix=None, node="system"
    )
    assert one_pass.diff_id == two_pass.diff_id
    assert "usr/bin/ping6" in [m.name for m in members(one_pass)]


def test_only_packs_one_folder_with_the_folders_above_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for tool in ("a+tool", "b"):
        (root / "opt" / "npm" / tool / "node_modules").mkdir(parents=True)
        (root / "opt" / "npm" / tool / "node_modules" / "x.js").write_text(tool)
    layer = tar_directory(root, tmp_path / "layer.tar", epoch=0, only="opt/npm/b")
    with tarfile.open(layer.path) as tar:
        assert tar.getnames() == [
            "opt",
            "opt/npm",
            "opt/npm/b",
            "opt/npm/b/node_modules",
            "opt/npm/b/node_modules/x.js",
        ]


NPM = "/opt/sandbox/tools/npm/"


# -- check_changes --------------------------------------------------------------------------


def test_podmans_changed_etc_is_not_a_write_outside_the_prefix() -> None:
    """Podman lists `C /etc` alone (its /etc/hosts, /etc/resolv.conf mount points)."""
    check_changes(["/etc", "/tmp", "/tmp/x", "/opt/sandbox/tools/npm/a"], NPM, "tools.npm")


def test_a_file_written_to_etc_is_still_refused() -> None:
    with pytest.raises(BuildError, match="/etc/npmrc"):
        check_changes(["/etc", "/etc/npmrc"], NPM, "tools.npm")


# -- normalizing against the layers below -------------------------------------------------

BELOW = [
    directory("etc"),
    Entry("etc/old.conf", b"old\n"),
    directory("run"),
    directory("tmp"),
    directory("usr"),
    directory("usr/share"),
    Entry("usr/share/gone", b"x\n"),
]
# What two engines record for the same step: Docker's overlay2 upper dir marks new folders
# opaque and lists only what changed; Podman's commit lists folders it touched for its mount
# points and adds /etc/mtab. (Its tars also put the file type in a folder's mode, 0o40755,
# which Python's tarfile cannot write: the real Podman build of docs/engines.md covers that.)
DOCKER_DIFF = [
    directory("etc"),
    Entry("etc/new.conf", b"new\n"),
    Entry("etc/.wh.old.conf"),
    directory("usr"),
    directory("usr/share"),
    directory("usr/share/doc"),
    Entry("usr/share/doc/.wh..wh..opq"),
    Entry("usr/share/doc/README", b"read me\n"),
    directory("tmp"),
]
PODMAN_DIFF = [
    directory("etc"),
    Entry("etc/mtab", kind=tarfile.SYMTYPE, link="/proc/mounts"),
    Entry("etc/new.conf", b"new\n"),
    Entry("etc/.wh.old.conf"),
    Entry("etc/.wh.never-there"),
    directory("run"),
    Entry("run/.containerenv", b""),
    directory("usr"),
    directory("usr/share"),
    directory("usr/share/doc"),
    Entry("usr/share/doc/README", b"read me\n"),
]


def normalized_against_below(tmp_path: Path, diff: list[Entry], name: str) -> LayerFile:
    below = listing([write_tar(tmp_path / "below.tar", BELOW)])
    source = write_tar(tmp_path / f"{name}-diff.tar", diff)
    return normalize_tar(
        source, tmp_path / f"{name}.tar", epoch=EPOCH, prefix=None, node="system", below=below
    )


def test_docker_and_podman_records_of_one_change_give_one_layer(tmp_path: Path) -> None:
    docker = normalized_against_below(tmp_path, DOCKER_DIFF, "docker")
    podman = normalized_against_below(tmp_path, PODMAN_DIFF, "podman")

    assert names(docker) == [
        "etc",
        "etc/.wh.old.conf",
        "etc/new.conf",
        "usr",
        "usr/share",
        "usr/share/doc",
        "usr/share/doc/README",
    ]
    assert docker.diff_id == podman.diff_id


def test_what_changes_the_filesystem_is_kept(tmp_path: Path) -> None:
    diff = [
        directory("usr"),
        directory("usr/share"),
        Entry("usr/share/.wh..wh..opq"),  # a folder below, emptied and made again
        Entry("run", kind=tarfile.DIRTYPE, mode=0o700),  # a folder whose mode changed
    ]

    kept = names(normalized_against_below(tmp_path, diff, "kept"))

    assert kept == ["run", "usr", "usr/share", "usr/share/.wh..wh..opq"]


def test_a_listing_stacks_layers_and_their_whiteouts(tmp_path: Path) -> None:
    lower = write_tar(tmp_path / "lower.tar", BELOW)
    upper = write_tar(
        tmp_path / "upper.tar",
        [Entry("etc/.wh.old.conf"), Entry("usr/share/.wh..wh..opq"), Entry("etc/x", b"x")],
    )

    stacked = listing([lower, upper])

    assert "etc/old.conf" not in stacked
    assert "usr/share/gone" not in stacked
    assert {"etc", "etc/x", "usr/share"} <= set(stacked)


def test_an_empty_file_copied_up_unchanged_is_dropped_as_containerd_does(tmp_path: Path) -> None:
    below = [directory("etc"), Entry("etc/.pwd.lock", b"", mode=0o600), Entry("etc/a", b"1")]
    overlay2 = [directory("etc"), Entry("etc/.pwd.lock", b"", mode=0o600), Entry("etc/b", b"2")]
    containerd = [directory("etc"), Entry("etc/b", b"2")]
    listed = listing([write_tar(tmp_path / "below.tar", below)])

    def layer(name: str, diff: list[Entry]) -> LayerFile:
        source = write_tar(tmp_path / f"{name}-diff.tar", diff)
        return normalize_tar(
            source, tmp_path / f"{name}.tar", epoch=EPOCH, prefix=None, node="system", below=listed
        )

    assert layer("overlay2", overlay2).diff_id == layer("containerd", containerd).diff_id
    changed = [directory("etc"), Entry("etc/.pwd.lock", b"", mode=0o644)]
    assert names(layer("changed", changed)) == ["etc", "etc/.pwd.lock"]


# -- dates inside contents (store/dated.py) -----------------------------------------------


def shadow(day: int) -> bytes:
    return f"root:*:{day}:0:99999:7:::\nagent:!:{day}:0:99999:7:::\n".encode()


def test_shadow_written_on_another_day_packs_to_the_same_layer(tmp_path: Path) -> None:
    day = EPOCH // 86400
    packed, normalized = [], []
    for later in (day + 3, day + 4):
        root = tmp_path / f"root-{later}"
        (root / "etc").mkdir(parents=True)
        (root / "etc/shadow").write_bytes(shadow(later))
        (root / "etc/shadow-").write_bytes(shadow(later))
        packed.append(tar_directory(root, tmp_path / f"{later}.tar", epoch=EPOCH))
        (tmp_path / f"diff-{later}").mkdir()
        diff = [directory("etc"), Entry("etc/shadow", shadow(later), mode=0o640)]
        normalized.append(normalize(tmp_path / f"diff-{later}", diff))

    assert packed[0].diff_id == packed[1].diff_id
    assert normalized[0].diff_id == normalized[1].diff_id
    for layer in (packed[0], normalized[0]):
        with tarfile.open(layer.path) as tar:
            data = tar.extractfile("etc/shadow")
            assert data is not None
            assert data.read() == shadow(day)


def test_shadow_in_a_diff_is_clamped_and_dropped_when_only_its_date_changed(
    tmp_path: Path,
) -> None:
    day = EPOCH // 86400
    below = [directory("etc"), Entry("etc/shadow", shadow(day), mode=0o640, mtime=EPOCH)]
    listed = listing([write_tar(tmp_path / "below.tar", below)])

    def layer(name: str, diff: list[Entry]) -> LayerFile:
        source = write_tar(tmp_path / f"{name}-diff.tar", diff)
        return normalize_tar(
            source, tmp_path / f"{name}.tar", epoch=EPOCH, prefix=None, node="system", below=listed
        )

    rewritten = layer("today", [directory("etc"), Entry("etc/shadow", shadow(day + 5), mode=0o640)])
    assert names(rewritten) == []
    added = shadow(day + 5) + f"new:!:{day + 5}:0:99999:7:::\n".encode()
    grown = layer("user", [directory("etc"), Entry("etc/shadow", added, mode=0o640)])
    with tarfile.open(grown.path) as tar:
        packed = tar.extractfile("etc/shadow")
        assert packed is not None
        assert packed.read() == shadow(day) + f"new:!:{day}:0:99999:7:::\n".encode()


def test_whiteouts_are_written_alike_whichever_engine_recorded_them(tmp_path: Path) -> None:
    """overlay2's upper dir gives a whiteout the deleted file's mode and time; containerd's
    differ gives mode 0 and time 0 (seen: perl's files dpkg removed under path-exclude)."""
    overlay2 = [directory("usr"), Entry("usr/.wh.gone", b"", mode=0o644, mtime=PAST)]
    containerd = [directory("usr"), Entry("usr/.wh.gone", b"", mode=0, mtime=0)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    one, other = normalize(tmp_path / "a", overlay2), normalize(tmp_path / "b", containerd)

    assert one.diff_id == other.diff_id
    marker = members(one)[1]
    assert (marker.name, marker.mode, marker.mtime) == ("usr/.wh.gone", 0, EPOCH)


def test_whiteouts_written_as_hard_links_of_one_another_become_plain_markers(
    tmp_path: Path,
) -> None:
    """overlayfs shares one inode among whiteouts; `docker commit` on overlay2 then writes
    the later ones as hard links to the first (seen on Docker 28)."""
    linked = [
        directory("usr"),
        Entry("usr/.wh.a", b""),
        Entry("usr/.wh.b", kind=tarfile.LNKTYPE, link="usr/.wh.a"),
        Entry("usr/.wh.c", kind=tarfile.LNKTYPE, link="usr/.wh.a"),
    ]
    plain = [directory("usr"), *(Entry(f"usr/.wh.{n}", b"") for n in "abc")]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    one, other = normalize(tmp_path / "a", linked), normalize(tmp_path / "b", plain)

    assert one.diff_id == other.diff_id
    assert [(m.name, m.type, m.linkname) for m in members(one)[1:]] == [
        (f"usr/.wh.{n}", tarfile.REGTYPE, "") for n in "abc"
    ]
