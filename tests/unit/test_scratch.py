"""Where layer trees are made (scratch.py, Cache.tree_scratch) and how a container's upper
dir is read as `docker diff` would list it (engine._upper_changes)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from builder.core import scratch
from builder.engine.containers import _upper_changes
from builder.store.cache import Cache


def test_the_tree_dir_can_be_chosen_or_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(scratch.ENV, str(tmp_path / "trees"))
    chosen = scratch.tree_root(tmp_path / "cache")
    assert chosen is not None
    assert chosen.parent == tmp_path / "trees" / f"sandbox-builder-{os.getuid()}"
    assert scratch.tree_root(tmp_path / "other-cache") != chosen  # one folder per cache
    monkeypatch.setenv(scratch.ENV, "")
    assert scratch.tree_root(tmp_path / "cache") is None


def test_memory_is_used_only_when_it_is_a_roomy_tmpfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(scratch.ENV, raising=False)
    monkeypatch.setattr(scratch, "MEMORY", tmp_path)  # not a mount point, let alone a tmpfs
    assert scratch.tree_root(tmp_path / "cache") is None
    monkeypatch.setattr(scratch, "MEMORY", Path("/proc"))  # mounted, but proc
    assert scratch.tree_root(tmp_path / "cache") is None


def test_trees_go_to_the_chosen_dir_and_leftovers_are_cleared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(scratch.ENV, str(tmp_path / "trees"))
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    tree = cache.tree_scratch("tools.npm-")
    assert tree.parent == scratch.tree_root(cache.root)
    (tree / "left-by-a-killed-build").write_text("x")
    other = Cache(tmp_path / "other")
    other.ensure()
    kept = other.tree_scratch("tools.pip-")
    cache.clear_scratch()
    assert not tree.exists()
    assert kept.exists(), "another cache's trees are not this cache's to clear"


def test_without_a_tree_dir_trees_go_to_the_cache_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(scratch.ENV, "")
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    assert cache.tree_scratch("x-").parent == cache.root / "tmp"


def test_an_upper_dir_lists_like_docker_diff(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "opt/sandbox/tools/pip/venv").mkdir(parents=True)
    (upper / "opt/sandbox/tools/pip/venv/a").write_text("x")
    (upper / "tmp").mkdir()
    (upper / "tmp/link").symlink_to("/etc")
    (upper / "etc").mkdir()
    os.mknod(upper / "etc/motd", stat.S_IFCHR | 0o000, os.makedev(0, 0))  # a whiteout
    assert _upper_changes(upper) == [
        "/etc",
        "/etc/motd",
        "/opt",
        "/opt/sandbox",
        "/opt/sandbox/tools",
        "/opt/sandbox/tools/pip",
        "/opt/sandbox/tools/pip/venv",
        "/opt/sandbox/tools/pip/venv/a",
        "/tmp",
        "/tmp/link",
    ]


def test_an_opaque_folder_leaves_the_listing_to_the_daemon(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "usr/share/doc").mkdir(parents=True)
    try:
        os.setxattr(upper / "usr/share/doc", "trusted.overlay.opaque", b"y")
    except OSError as exc:  # trusted.* needs CAP_SYS_ADMIN (the suite runs as root)
        pytest.fail(f"cannot set a trusted xattr here ({exc}); run the suite as root")
    assert _upper_changes(upper) is None
