"""A full disk said plainly: which of a step's disks filled, from what its tools printed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from builder.core.errors import BuildError, CacheError, ResolutionError
from builder.engine.interface import RunResult, require_success

ENGINE = "the storage of Docker Engine 28.5.2 at unix:///x.sock (its data root /var/lib/docker)"


def _failed(tmp_path: Path, output: str, bound: dict[str, tuple[str, str]]) -> RunResult:
    (tmp_path / "step.log").write_text(output)
    return RunResult(container="c", exit_code=1, bound=bound, storage=ENGINE)


def test_a_tool_filling_a_folder_of_ours_names_that_folder_and_its_setting(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "trees" / "opt/sandbox/tools/pip"
    tree.mkdir(parents=True)
    (tree / "partial.py").write_bytes(b"x" * 5000)
    log = tmp_path / "step.log"
    pip = (
        "Collecting pycodestyle==2.12.1\n"
        "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on "
        "device: '/opt/sandbox/tools/pip/pycodestyle/lib/python3.11/site-packages/x.py'\n"
    )
    result = _failed(tmp_path, pip, {"/opt/sandbox/tools/pip": (str(tree), "SANDBOX_TREE_DIR")})
    with pytest.raises(CacheError) as caught:
        require_success(result, what="tools.pip: pip install", log=log)
    message = str(caught.value)
    assert caught.value.exit_code == 6
    assert message.startswith("tools.pip: pip install: no space left on the filesystem at ")
    assert f"writing {tree}" in message
    assert "It had written 5,000 bytes when the disk filled" in message
    assert "point SANDBOX_TREE_DIR at a folder with room" in message
    assert message.endswith(f"Its log: {log}")


def test_npm_and_apt_words_and_the_download_cache(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    archives = tmp_path / "downloads/apt/archives"
    archives.mkdir(parents=True)
    bound = {"/var/cache/apt/archives": (str(archives), "SANDBOX_DOWNLOAD_DIR")}
    apt = "E: You don't have enough free space in /var/cache/apt/archives/.\n"
    with pytest.raises(CacheError, match="point SANDBOX_DOWNLOAD_DIR at a folder with room"):
        require_success(_failed(tmp_path, apt, bound), what="system: apt-get install", log=log)
    npm = "npm error code ENOSPC\nnpm error syscall write\nnpm error path /root/.npm/_cacache\n"
    npm_bound = {"/root/.npm": (str(archives), "SANDBOX_DOWNLOAD_DIR")}
    with pytest.raises(CacheError, match="SANDBOX_DOWNLOAD_DIR"):
        require_success(_failed(tmp_path, npm, npm_bound), what="tools.npm: npm ci", log=log)


def test_a_full_container_filesystem_names_the_engine_and_how_to_free_it(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    dpkg = (
        "Unpacking libmagic-mgc (1:5.44-3) ...\n"
        "dpkg: error processing archive /var/cache/apt/archives/libmagic-mgc_1%3a5.44-3_amd64"
        ".deb (--unpack):\n cannot copy extracted data for './usr/lib/file/magic.mgc' to "
        "'/usr/lib/file/magic.mgc.dpkg-new': failed to write (No space left on device)\n"
    )
    bound = {"/var/cache/apt/archives": (str(tmp_path), "SANDBOX_DOWNLOAD_DIR")}
    with pytest.raises(CacheError) as caught:
        require_success(_failed(tmp_path, dpkg, bound), what="system: apt-get install", log=log)
    message = str(caught.value)
    assert message.startswith(f"system: apt-get install: no space left in {ENGINE} (")
    assert "That is the engine's disk, not the cache dir" in message
    assert "`docker system df`" in message
    assert "`sandbox gc`" in message
    assert "`data-root` in its daemon.json" in message
    assert f"Its log: {log}." in message


def test_no_path_said_the_folder_of_ours_that_is_full_is_the_one(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "sbx20-u", str(disk)])
    if mounted.returncode:  # not root here: a folder can't be made full on demand
        pytest.fail("this test mounts a tmpfs: run it as root, as CI does")
    try:
        (disk / "fill").write_bytes(b"x" * 60_000)
        log = tmp_path / "step.log"
        said = "write error: No space left on device\n"
        bound = {"/opt/sandbox/tools/npm": (str(disk), "SANDBOX_TREE_DIR")}
        with pytest.raises(CacheError, match=f"no space left on the filesystem at {disk}"):
            require_success(_failed(tmp_path, said, bound), what="tools.npm", log=log)
        roomy = {"/opt/sandbox/tools/npm": (str(tmp_path), "SANDBOX_TREE_DIR")}
        with pytest.raises(CacheError, match="no space left in the storage of Docker"):
            require_success(_failed(tmp_path, said, roomy), what="tools.npm", log=log)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_network_timeout_names_the_setting_and_other_failures_are_the_tools_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDBOX_NET_TIMEOUT", "2")
    log = tmp_path / "step.log"
    npm = "npm error network Response timeout while trying to fetch http://x/is-number\n"
    with pytest.raises(ResolutionError) as caught:
        require_success(
            _failed(tmp_path, npm, {}), what="resolving npm tools", log=log, error=ResolutionError
        )
    message = str(caught.value)
    assert message.startswith("resolving npm tools failed with exit 1:\n    npm error network")
    assert f"full log: {log}" in message
    assert "waited up to 2s for an answer and was tried 3 times (SANDBOX_NET_TIMEOUT)" in message
    with pytest.raises(BuildError) as other:
        require_success(_failed(tmp_path, "E: broken\n", {}), what="system", log=log)
    assert "SANDBOX_NET_TIMEOUT" not in str(other.value)
    assert not isinstance(other.value, CacheError)
