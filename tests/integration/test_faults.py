"""The faults of real machines: a stalled network, a full disk, a registry dying mid-push, a
corrupt cache. Each test asserts the error a user reads, the exit code, that nothing was left
half-written, and that the next run, once the fault is gone, succeeds.

The stall bounds are made short through their settings (SANDBOX_NET_TIMEOUT,
SANDBOX_STEP_TIMEOUT), so each fault costs seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Project, _free_port, docker
from tests.integration.faults import Dockerd, Mirror, RegistryServer
from tests.integration.test_reliability import _assert_cache_whole

pytestmark = pytest.mark.docker

FAST = {"SANDBOX_NET_TIMEOUT": "2"}


@pytest.fixture(scope="module")
def mirror() -> Iterator[Mirror]:
    served = Mirror()
    yield served
    served.close()


def _timed(project: Project, *args: str, env: dict[str, str]) -> tuple[float, int, str, str]:
    started = time.monotonic()
    run = project.sandbox(*args, env=env)
    return time.monotonic() - started, run.code, run.out, run.err


def _our_containers(folder: Path) -> list[str]:
    """Containers (any state) with a mount from under `folder`: a build's step containers."""
    ids = docker("ps", "-aq", "--filter", "label=sandbox-builder").split()
    if not ids:
        return []
    found = json.loads(docker("inspect", *ids, check=False) or "[]")
    return [
        c["Id"]
        for c in found
        if any(str(m.get("Source", "")).startswith(str(folder)) for m in c.get("Mounts", []))
    ]


def test_a_stalled_bootstrap_mirror_fails_lock_in_seconds_then_lock_succeeds(
    project: Project, mirror: Mirror
) -> None:
    project.write(
        f'[image]\nname = "sbx20/stall-boot"\n\n[base]\n'
        f'bootstrap = {{ suite = "bookworm", mirror = "{mirror.url}" }}\n'
    )
    mirror.stall()
    seconds, code, _, err = _timed(project, "lock", env=FAST)
    assert code == 4, err
    assert "debootstrap failed" in err
    assert "Read error (Connection timed out)" in err
    assert "waited up to 2s for an answer and was tried 3 times (SANDBOX_NET_TIMEOUT)" in err
    assert seconds < 60, f"the stall took {seconds:.0f}s to detect"
    assert not project.lock.exists(), "a failed lock wrote sandbox.lock"
    mirror.relay()
    seconds, code, _, err = _timed(project, "lock", env={})
    assert code == 0, err
    assert "resolved  base (debootstrap bookworm" in err


def test_a_stalled_apt_mirror_fails_the_system_step_then_the_rebuild_reuses_the_base(
    project: Project, mirror: Mirror, base_image: str, tmp_path: Path
) -> None:
    port = mirror.url.split(":")[-1].split("/")[0]
    derived = f"sbx20-stall-base:{port}"
    name = f"sbx20-stall-{port}"
    sources = f"deb {mirror.url} bookworm main"
    docker("run", "--name", name, "--user", "0", base_image, "sh", "-c",
           f"echo '{sources}' > /etc/apt/sources.list")  # fmt: skip
    downloads = tmp_path / "downloads"
    env = {"SANDBOX_DOWNLOAD_DIR": str(downloads), "SANDBOX_STORE_DIR": str(tmp_path / "store")}
    try:
        docker("commit", name, derived)
        project.write(
            f'[image]\nname = "sbx20/stall-apt"\nuser = "agent"\n\n[base]\nimage = "{derived}"\n'
            '\n[system]\npackages = ["jq"]\n'
        )
        mirror.relay()
        project.ok("lock")
        lock = project.lock.read_bytes()
        mirror.stall()
        seconds, code, _, err = _timed(project, "build", env={**env, **FAST})
        assert code == 5, err
        assert "apt-get update could not download the package lists from the mirror" in err
        assert "Each try waited 2s (SANDBOX_NET_TIMEOUT)" in err
        assert f"full log: {project.cache / 'logs' / 'system.log'}" in err
        assert seconds < 90, f"the stalled apt took {seconds:.0f}s to detect"
        stall_seconds = seconds

        # The per-step limit stops a step whatever its tools do.
        seconds, code, _, err = _timed(
            project,
            "build",
            env={**env, "SANDBOX_NET_TIMEOUT": "600", "SANDBOX_STEP_TIMEOUT": "5"},
        )
        assert code == 5, err
        assert "system: apt-get install was stopped after 5s without finishing" in err
        assert "(the step limit, SANDBOX_STEP_TIMEOUT=5)" in err
        assert f"Its log: {project.cache / 'logs' / 'system.log'}" in err
        assert seconds < 60
        assert _our_containers(downloads) == [], "a stopped step left its container"
        _assert_cache_whole(project.cache)
        assert project.lock.read_bytes() == lock

        mirror.relay()
        run = project.ok("build", "--json")
        statuses = {n["name"]: n["status"] for n in json.loads(run.out)["nodes"]}
        assert statuses == {"base": "cached", "system": "built"}
        print(f"stalled apt mirror detected in {stall_seconds:.1f}s")
    finally:
        docker("rm", "-f", name, check=False)
        docker("rmi", derived, check=False)
        subprocess.run(
            "docker images -q sbx20/stall-apt | sort -u | xargs -r docker rmi -f",
            shell=True,
            check=False,
            capture_output=True,
        )


def test_a_corrupt_cache_is_caught_before_use_named_and_rebuilt(
    project: Project, base_image: str, tmp_path: Path
) -> None:
    project.write(
        # A user of its own makes a system layer no other image holds, so a build without
        # the image has to stream that layer (a shared one would not be read at all).
        f'[image]\nname = "sbx20/corrupt"\nuser = "sbx20corrupt"\n\n'
        f'[base]\nimage = "{base_image}"\n'
        '\n[system]\npackages = ["jq"]\n'
    )
    cache = tmp_path / "cache"
    env = {"SANDBOX_CACHE_DIR": str(cache), "SANDBOX_STORE_DIR": str(tmp_path / "store")}

    def build() -> tuple[int, dict[str, object], str]:
        run = project.sandbox("build", "--json", env=env)
        return run.code, json.loads(run.out) if run.code == 0 else {}, run.err

    def system_layer() -> Path:
        entry = next(
            json.loads(p.read_text())
            for p in (cache / "nodes").glob("*.json")
            if json.loads(p.read_text())["name"] == "system"
        )
        return cache / "layers" / f"{entry['layers'][-1]['diff_id'][7:]}.tar"

    try:
        assert project.sandbox("lock", env=env).code == 0
        code, first, err = build()
        assert code == 0, err
        image = first["image"]["id"]  # type: ignore[index]

        # A layer whose bytes changed (same size): refused while streaming to the engine.
        docker("rmi", "-f", image)
        layer = system_layer()
        with layer.open("r+b") as data:
            data.seek(layer.stat().st_size // 2)
            byte = data.read(1)
            data.seek(-1, 1)
            data.write(bytes([byte[0] ^ 0xFF]))
        code, _, err = build()
        assert code == 6, err
        assert f"cache layer {layer} is corrupt: its bytes hash to sha256:" in err
        assert "run the command again to rebuild the node" in err
        assert "Traceback" not in err
        assert docker("image", "inspect", image, check=False) == "[]", "a corrupt image loaded"
        assert not layer.exists(), "the corrupt layer was kept"
        for kept in (cache / "layers").glob("*.tar"):
            assert kept.name == f"{hashlib.sha256(kept.read_bytes()).hexdigest()}.tar"
        code, again, err = build()
        assert code == 0, err
        statuses = {n["name"]: n["status"] for n in again["nodes"]}  # type: ignore[attr-defined]
        assert statuses == {"base": "cached", "system": "built"}
        assert again["image"]["id"] == image  # type: ignore[index]

        # A truncated layer: a miss, so the node rebuilds, to the same image.
        docker("rmi", "-f", image)
        layer = system_layer()
        with layer.open("r+b") as data:
            data.truncate(layer.stat().st_size // 2)
        code, again, err = build()
        assert code == 0, err
        statuses = {n["name"]: n["status"] for n in again["nodes"]}  # type: ignore[attr-defined]
        assert statuses == {"base": "cached", "system": "built"}
        assert again["image"]["id"] == image  # type: ignore[index]
        _assert_cache_whole(cache)

        # A node entry that is not JSON: refused, naming the file and the fix.
        entry = next(p for p in (cache / "nodes").glob("*.json") if "system" in p.read_text())
        entry.write_text('{"version": 1, "name": "sys')
        code, _, err = build()
        assert code == 6, err
        assert f"corrupt cache entry {entry}" in err
        assert "Delete it; the node will rebuild" in err
        entry.unlink()
        code, again, err = build()
        assert code == 0, err
        assert again["image"]["id"] == image  # type: ignore[index]
    finally:
        subprocess.run(
            "docker images -q sbx20/corrupt | sort -u | xargs -r docker rmi -f",
            shell=True,
            check=False,
            capture_output=True,
        )


def test_a_registry_killed_mid_upload_fails_publish_with_what_got_there_then_it_resumes(
    project: Project, base_image: str, tmp_path: Path
) -> None:
    (tmp_path / "registry").mkdir()
    registry = RegistryServer(tmp_path / "registry", _free_port())
    registry.start()
    name = "sbx20/regdie"
    project.write(
        f'[image]\nname = "{name}"\nuser = "agent"\nregistry = "{registry.address}"\n\n'
        f'[base]\nimage = "{base_image}"\n\n[system]\npackages = ["jq"]\n'
    )
    cache = tmp_path / "cache"
    env = {"SANDBOX_CACHE_DIR": str(cache), "SANDBOX_STORE_DIR": str(tmp_path / "store")}
    try:
        assert project.sandbox("lock", env=env).code == 0
        built = project.sandbox("build", "--json", env=env)
        assert built.code == 0, built.err
        publish = subprocess.Popen(
            [sys.executable, "-m", "builder", "-f", str(project.spec), "publish"],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        killed_at = registry.kill_during_upload(min_bytes=1 << 20, timeout=300)
        started = time.monotonic()
        _, err = publish.communicate(timeout=300)
        gave_up = time.monotonic() - started
        assert publish.returncode == 7, err
        assert f"cannot reach registry {registry.address} while uploading blob" in err
        assert "after 3 attempts" in err
        assert "Before it stopped, this publish uploaded" in err
        assert "the image (" in err
        assert "was not pushed" in err
        assert "it uploads only what is missing" in err
        assert "Traceback" not in err
        assert gave_up < 30, f"publish took {gave_up:.0f}s to give up"
        _assert_cache_whole(cache)

        registry.start()  # the same storage: what got there before the kill
        assert registry.manifests_missing_blobs(name) == []
        before = registry.blobs()
        sent_first = int(err.split("this publish uploaded ", 1)[1].split(" ", 1)[0])
        assert sent_first == len(before), (sent_first, before)
        again = project.sandbox("publish", env=env)
        assert again.code == 0, again.err
        after = registry.blobs()
        sent = int(again.err.split(" new blobs)")[0].rsplit("(", 1)[1])
        image = again.err.split(f"{registry.address}/{name}@", 1)[1].split()[0]
        attached = registry.attached_blobs(name, image)  # the provenance and SBOM it attests
        assert attached, again.err
        assert sent == len(after - before - attached) > 0, again.err
        assert before <= after
        assert registry.manifests_missing_blobs(name) == []
        print(f"killed at {killed_at} bytes; gave up in {gave_up:.1f}s; resumed with {sent}")
    finally:
        registry.kill()
        subprocess.run(
            f"docker images -q {name} | sort -u | xargs -r docker rmi -f",
            shell=True,
            check=False,
            capture_output=True,
        )


@pytest.fixture
def small_disks(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Two tmpfs mounts of a few MB: for the cache dir and for the trees (SANDBOX_TREE_DIR)."""
    disks = (tmp_path / "disk", tmp_path / "trees")
    for disk, size in zip(disks, ("100m", "1m"), strict=True):
        disk.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "sbx20-disk", str(disk)], check=True
        )
    yield disks
    for disk in disks:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _remount(disk: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True)


def test_a_full_disk_names_the_folder_and_bytes_keeps_nothing_half_written_then_builds(
    project: Project, base_image: str, small_disks: tuple[Path, Path]
) -> None:
    disk, trees = small_disks
    vendor = project.root / "vendor"
    vendor.mkdir()
    payload = project.root / "blob"
    payload.write_bytes(os.urandom(3 << 20))  # incompressible: 3 MB in the tree
    subprocess.run(["tar", "-czf", str(vendor / "blob.tar.gz"), "-C", str(project.root), "blob"])
    project.write(
        f'[image]\nname = "sbx20/full"\nuser = "agent"\n\n[base]\nimage = "{base_image}"\n\n'
        '[tools.bin.blob]\nversion = "1"\npath = "vendor/blob.tar.gz"\n'
    )
    cache = disk / "cache"
    env = {
        "SANDBOX_CACHE_DIR": str(cache),
        "SANDBOX_STORE_DIR": str(project.root / "store"),
        "SANDBOX_TREE_DIR": str(trees),
    }
    assert project.sandbox("lock", env=env).code == 0
    lock = project.lock.read_bytes()

    def leftovers() -> list[Path]:
        return [p for p in [*(cache / "tmp").rglob("*"), *trees.rglob("*")] if p.is_file()]

    # The cache dir's disk: the (slim) base image and its layer do not both fit in 100 MB.
    # One job: the binary, which waits for no parent, would else fill the trees meanwhile.
    run = project.sandbox("build", "--jobs", "1", env=env)
    assert run.code == 6, run.err
    assert f"no space left on the filesystem at {disk} (" in run.err
    assert "bytes free of 104,857,600), writing " in run.err
    assert "bytes when the disk filled and needs more than that" in run.err
    assert "--cache-dir (or SANDBOX_CACHE_DIR)" in run.err
    assert "Traceback" not in run.err
    assert leftovers() == []
    assert list((cache / "layers").iterdir()) == []
    assert list((cache / "nodes").iterdir()) == []
    assert not (cache / "overlay.json").exists()
    assert project.lock.read_bytes() == lock

    # Room in the cache, none for the trees: the base is kept, the system layer built (one
    # job, in stack order), the binary's tree fails.
    _remount(disk, "600m")
    run = project.sandbox("build", "--jobs", "1", env=env)
    assert run.code == 6, run.err
    assert f"unpacking blob.tar.gz: no space left on the filesystem at {trees} (" in run.err
    assert "point SANDBOX_TREE_DIR at a folder with room" in run.err
    assert leftovers() == []
    _assert_cache_whole(cache)
    assert not (cache / "overlay.json").exists()

    _remount(trees, "64m")
    run = project.sandbox("build", "--json", env=env)
    assert run.code == 0, run.err
    statuses = {n["name"]: n["status"] for n in json.loads(run.out)["nodes"]}
    assert statuses == {"base": "cached", "system": "cached", "tools.bin.blob": "built"}
    _assert_cache_whole(cache)
    assert leftovers() == []
    subprocess.run(
        "docker images -q sbx20/full | sort -u | xargs -r docker rmi -f",
        shell=True,
        check=False,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def own_engine(base_image: str) -> Iterator[Dockerd]:
    """A daemon of these tests' own, holding the session's base image, its data root a
    tmpfs (1 GB at most) that a test can shrink to fill."""
    daemon = Dockerd(Path(tempfile.mkdtemp(prefix="sbx20e-", dir="/tmp")), data_size="1g")
    daemon.start()
    try:
        with subprocess.Popen(["docker", "save", base_image], stdout=subprocess.PIPE) as save:
            loaded = subprocess.run(
                ["docker", "-H", daemon.host, "load", "-q"], stdin=save.stdout, capture_output=True
            )
        assert loaded.returncode == 0, loaded.stderr
        yield daemon
    finally:
        daemon.stop()
        subprocess.run(["rm", "-rf", str(daemon.folder)], check=False)


def test_an_engine_restarted_mid_step_fails_the_build_clearly_and_the_rerun_keeps_the_base(
    project: Project, base_image: str, own_engine: Dockerd, tmp_path: Path
) -> None:
    project.write(
        f'[image]\nname = "sbx20/restart"\nuser = "agent"\n\n[base]\nimage = "{base_image}"\n'
        '\n[system]\npackages = ["jq", "file"]\n'
    )
    cache = tmp_path / "cache"
    env = {
        **os.environ,
        "DOCKER_HOST": own_engine.host,
        "SANDBOX_CACHE_DIR": str(cache),
        "SANDBOX_STORE_DIR": str(tmp_path / "store"),
    }
    assert project.sandbox("lock", env=env).code == 0
    build = subprocess.Popen(
        [sys.executable, "-m", "builder", "-f", str(project.spec), "build", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not own_engine.docker(
        "ps", "-q", "--filter", "label=sandbox-builder=step", check=False
    ).stdout.strip():
        assert time.monotonic() < deadline, "the system step never started"
        assert build.poll() is None, build.communicate()
        time.sleep(0.1)
    # Killed as soon as the step's container runs: with the .debs in the shared download cache
    # the whole step (dpkg-query, apt installing jq and file) can end within a second, and a
    # kill after it would find the system node built (it did, in a whole-suite run).
    own_engine.kill()
    own_engine.start()
    _, err = build.communicate(timeout=300)
    assert build.returncode == 9, err
    assert "the engine stopped answering while running a container of" in err
    assert "Traceback" not in err
    assert "system" in err
    _assert_cache_whole(cache)
    entries = [json.loads(p.read_text())["name"] for p in (cache / "nodes").glob("*.json")]
    assert entries == ["base"], entries

    run = project.sandbox("build", "--json", env=env)
    assert run.code == 0, run.err
    statuses = {n["name"]: n["status"] for n in json.loads(run.out)["nodes"]}
    assert statuses == {"base": "cached", "system": "built"}
    gc = project.sandbox("gc", env=env)
    assert gc.code == 0, gc.err
    left = own_engine.docker("ps", "-aq", "--filter", "label=sandbox-builder", check=False)
    assert left.stdout.strip() == "", f"step containers left after gc: {left.stdout}"


def test_the_engine_s_full_data_root_names_the_engine_keeps_nothing_then_builds(
    project: Project, own_engine: Dockerd, base_image: str, tmp_path: Path
) -> None:
    project.write(
        f'[image]\nname = "sbx20/enginefull"\nuser = "agent"\n\n[base]\nimage = "{base_image}"\n'
        '\n[system]\npackages = ["file"]\n'  # libmagic's 7 MB database among them
    )
    cache = tmp_path / "cache"
    env = {
        "DOCKER_HOST": own_engine.host,
        "SANDBOX_CACHE_DIR": str(cache),
        "SANDBOX_STORE_DIR": str(tmp_path / "store"),
    }
    assert project.sandbox("lock", env=env).code == 0
    lock = project.lock.read_bytes()
    own_engine.leave_free(3 << 20)
    try:
        started = time.monotonic()
        run = project.sandbox("build", env=env)
        seconds = time.monotonic() - started
    finally:
        own_engine.resize("1g")
    assert run.code == 6, run.err
    said = run.err.strip().splitlines()[-1]
    assert "system: apt-get install: no space left in the storage of Docker Engine" in run.err
    assert f"(its data root {own_engine.data})" in run.err
    assert "That is the engine's disk, not the cache dir" in run.err
    assert "`docker system df`" in run.err
    assert "Traceback" not in run.err
    _assert_cache_whole(cache)
    entries = [json.loads(p.read_text())["name"] for p in (cache / "nodes").glob("*.json")]
    assert entries == ["base"], entries
    assert not (cache / "overlay.json").exists()
    assert project.lock.read_bytes() == lock
    left = own_engine.docker("ps", "-aq", "--filter", "label=sandbox-builder=step")
    assert left.stdout.strip() == "", "the failed step left its container"

    run = project.sandbox("build", "--json", env=env)
    assert run.code == 0, run.err
    statuses = {n["name"]: n["status"] for n in json.loads(run.out)["nodes"]}
    assert statuses == {"base": "cached", "system": "built"}
    print(f"the engine's full data root detected in {seconds:.1f}s: {said}")


@pytest.fixture(scope="module")
def index_project(
    mirror: Mirror, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    """A project whose base image points pip and npm at `mirror` (its /etc/pip.conf and
    /root/.npmrc, as a company's index would be set), locked through it while it relays:
    Debian's python3, node from PyPI, one pip tool and one npm tool."""
    root = tmp_path_factory.mktemp("sbx20-index")
    port = mirror.url.split(":")[-1].split("/")[0]
    name, derived = f"sbx20-index-{port}", f"sbx20-index-base:{port}"
    pip_conf = f"[global]\nindex-url = {mirror.pypi}\ntrusted-host = {mirror.host}\n"
    setup = (
        f"printf %s {shlex.quote(pip_conf)} > /etc/pip.conf && "
        f"printf %s {shlex.quote(f'registry={mirror.npm}')} > /root/.npmrc"
    )
    docker("run", "--name", name, "--user", "0", base_image, "sh", "-c", setup)
    project = Project(root=root / "project", cache=root / "cache")
    project.root.mkdir()
    try:
        docker("commit", name, derived)
        project.write(
            f'[image]\nname = "sbx20/index"\nuser = "agent"\n\n[base]\nimage = "{derived}"\n\n'
            '[runtimes]\nnode = { version = "22", provider = "pypi" }\n\n'
            '[tools]\npip = ["pycodestyle"]\nnpm = ["is-number"]\n'
        )
        mirror.relay()
        project.ok("lock")
        yield project
    finally:
        docker("rm", "-f", name, check=False)
        subprocess.run(
            f"docker images -q sbx20/index | sort -u | xargs -r docker rmi -f; "
            f"docker rmi {derived}",
            shell=True,
            check=False,
            capture_output=True,
        )


def test_a_stalled_index_fails_pip_and_npm_in_seconds_naming_the_step_log_and_setting(
    index_project: Project, mirror: Mirror, tmp_path: Path
) -> None:
    lock = index_project.lock.read_bytes()
    # Empty download caches: npm would answer from its cache what it fetched minutes ago.
    env = {**FAST, "SANDBOX_DOWNLOAD_DIR": str(tmp_path / "downloads")}
    measured = {}
    for under, tool, node, what in (
        ("/pypi/", "pycodestyle", "tools.pip", "resolving pip tools"),
        ("/npm/", "is-number", "tools.npm", "resolving npm tools"),
    ):
        mirror.stall(under)
        try:
            seconds, code, _, err = _timed(index_project, "lock", "--update", tool, env=env)
        finally:
            mirror.relay()
        assert code == 4, err
        assert f"error: {what} failed with exit " in err
        assert f"full log: {index_project.cache / 'logs' / f'{node}.log'}" in err
        assert "waited up to 2s for an answer and was tried 3 times (SANDBOX_NET_TIMEOUT)" in err
        assert "Traceback" not in err
        assert seconds < 60, f"the stalled {node} took {seconds:.0f}s to detect"
        assert index_project.lock.read_bytes() == lock, "a failed lock changed sandbox.lock"
        measured[node] = seconds
    print("stalled index detected in " + ", ".join(f"{n} {s:.1f}s" for n, s in measured.items()))


def test_a_step_filling_the_trees_folder_names_it_and_its_setting_then_builds(
    index_project: Project, small_disks: tuple[Path, Path]
) -> None:
    _, trees = small_disks
    _remount(trees, "64k")  # room for a venv's first files, not for a tool
    env = {"SANDBOX_TREE_DIR": str(trees)}
    run = index_project.sandbox("build", "--jobs", "1", env=env)
    assert run.code == 6, run.err
    # pip's venv, laid on the host in the trees folder, fills 64k (npm's tree is assembled
    # straight into a layer in the cache, so it does not use the trees folder)
    found = re.search(
        rf"(tools\.pip): laying pycodestyle's venv: no space left on the filesystem at "
        rf"{trees} \(",
        run.err,
    )
    assert found, run.err
    failed = found.group(1)
    run_err_line = run.err.strip().splitlines()[-1]
    assert "point SANDBOX_TREE_DIR at a folder with room" in run.err
    assert "Traceback" not in run.err
    assert [p for p in trees.rglob("*") if p.is_file()] == []
    _assert_cache_whole(index_project.cache)
    names = [json.loads(p.read_text())["name"] for p in (index_project.cache / "nodes").iterdir()]
    assert failed not in names, names

    _remount(trees, "64m")
    run = index_project.sandbox("build", "--json", env=env)
    assert run.code == 0, run.err
    statuses = {n["name"]: n["status"] for n in json.loads(run.out)["nodes"]}
    assert statuses.pop(failed) == "built"
    other = statuses.pop({"tools.pip", "tools.npm"}.difference({failed}).pop())
    assert other in ("built", "cached")  # built when the failure stopped the build first
    assert statuses == {"base": "cached", "system": "cached", "runtime.node": "cached"}
    print(f"{failed} filled the trees folder: {run_err_line}")
