"""The no-op replay: printed only while every recorded file and the daemon's image still match.

The daemon is a stand-in on a real unix socket answering `GET /images/<id>/json` the way
dockerd does; the real daemon's side is covered by the integration tests of `build`.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socketserver
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from builder.image import noop
from tests.unit.clirun import sandbox_process

IMAGE = "sha256:" + "ab" * 32
TAGS = ["team/agent:abababababab", "team/agent:latest"]
OVERLAY = json.dumps({"codex": {"sandbox": {"image": IMAGE}}}) + "\n"


class FakeDaemon(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    images: dict[str, list[str]]
    asked: list[str]


class Handler(socketserver.StreamRequestHandler):
    server: FakeDaemon

    def handle(self) -> None:
        line = self.rfile.readline().decode()
        while self.rfile.readline() not in (b"\r\n", b""):
            pass
        path = line.split(" ")[1]
        self.server.asked.append(path)
        image = path.removeprefix("/images/").removesuffix("/json")
        if image in self.server.images:
            body = json.dumps({"Id": image, "RepoTags": self.server.images[image]}).encode()
            self.wfile.write(b"HTTP/1.0 200 OK\r\n\r\n" + body)
        else:
            self.wfile.write(b'HTTP/1.0 404 Not Found\r\n\r\n{"message": "no such image"}')


@pytest.fixture
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDaemon]:
    path = tmp_path / "docker.sock"
    server = FakeDaemon(str(path), Handler)
    server.images = {IMAGE: list(TAGS)}
    server.asked = []
    # A short poll: shutdown() waits for it (the default 0.5 s, once per test).
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A spec, a lock and a cache with one layer and the overlay, all older than a record."""
    root = tmp_path / "project"
    (root / "cache" / "layers").mkdir(parents=True)
    for rel in ("sandbox.toml", "sandbox.lock", "cache/layers/aa.tar", "cache/overlay.json"):
        (root / rel).write_text(rel)
        os.utime(root / rel, ns=(1_000_000_000, 1_000_000_000))
    return root


def _record(root: Path) -> None:
    noop.record(
        spec_file=root / "sandbox.toml",
        cache_dir=root / "cache",
        inputs=[root / "sandbox.toml", root / "sandbox.lock"],
        outputs=[root / "cache/layers/aa.tar"],
        overlay=(root / "cache/overlay.json", OVERLAY),
        image_id=IMAGE,
        tags=TAGS,
        stderr="  cached    base\n1 nodes (1 cached)",
        text=f"image {IMAGE}",
        as_json={"image": {"id": IMAGE}},
    )


def _replay(root: Path, *, as_json: bool = False) -> bool:
    return noop.replay(spec_file=root / "sandbox.toml", cache_dir=root / "cache", as_json=as_json)


def test_a_recorded_noop_is_printed_as_recorded(
    project: Path, daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    _record(project)
    assert _replay(project)
    out, err = capsys.readouterr()
    assert out == f"image {IMAGE}\n"
    # the time is the replay's own: a loaded machine may take a tenth of a second or more
    assert re.fullmatch(r"  cached    base\n1 nodes \(1 cached\) in \d+\.\ds\n", err), err
    assert _replay(project, as_json=True)
    assert json.loads(capsys.readouterr().out) == {"image": {"id": IMAGE}}
    assert daemon.asked == [f"/images/{IMAGE}/json"] * 2


def test_a_replayed_build_imports_neither_typer_docker_nor_tomlkit(
    project: Path, daemon: FakeDaemon
) -> None:
    """The real `sandbox build` process, its imports listed by `python -X importtime`."""
    _record(project)

    done = sandbox_process("-f", project / "sandbox.toml", "build", python=("-X", "importtime"))

    assert (done.returncode, done.stdout) == (0, f"image {IMAGE}\n"), done.stderr
    imported = {
        line.rpartition("|")[2].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "builder" in imported
    assert imported.isdisjoint({"typer", "click", "rich", "docker", "tomlkit", "requests"})
    assert daemon.asked == [f"/images/{IMAGE}/json"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda root: (root / "sandbox.toml").write_text("edited"), id="spec edited"),
        pytest.param(lambda root: os.utime(root / "sandbox.lock"), id="lock touched"),
        pytest.param(lambda root: (root / "cache/layers/aa.tar").unlink(), id="layer gone"),
        pytest.param(lambda root: (root / "cache/noop.json").write_text("{"), id="torn record"),
    ],
)
def test_a_changed_file_means_a_real_build(
    project: Path,
    daemon: FakeDaemon,
    capsys: pytest.CaptureFixture[str],
    change: Callable[[Path], object],
) -> None:
    _record(project)
    change(project)
    assert not _replay(project)
    assert capsys.readouterr() == ("", "")


def test_an_image_gone_or_untagged_means_a_real_build(project: Path, daemon: FakeDaemon) -> None:
    _record(project)
    daemon.images[IMAGE] = TAGS[:1]  # someone moved :latest
    assert not _replay(project)
    del daemon.images[IMAGE]
    assert not _replay(project)


def test_another_spec_cache_or_daemon_is_not_replayed(
    project: Path, daemon: FakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(project)
    cache = project / "cache"
    assert not noop.replay(spec_file=project / "other.toml", cache_dir=cache, as_json=False)
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert not _replay(project)
    assert daemon.asked == []


def test_no_replay_while_a_build_holds_the_cache(project: Path, daemon: FakeDaemon) -> None:
    _record(project)
    with (project / "cache" / ".lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert not _replay(project)
    assert _replay(project)


def test_an_input_edited_just_now_is_not_trusted(project: Path) -> None:
    _record(project)
    (project / "sandbox.lock").write_text("edited")  # it may change again in the same tick
    _record(project)
    assert not (project / "cache" / "noop.json").exists()
    os.utime(project / "sandbox.lock", ns=(1_000_000_000, 1_000_000_000))
    _record(project)
    assert (project / "cache" / "noop.json").exists()


def test_a_missing_file_records_nothing(project: Path) -> None:
    (project / "cache/layers/aa.tar").unlink()
    _record(project)
    assert not (project / "cache" / "noop.json").exists()


@pytest.mark.parametrize("overlay", ['{"codex": {"sandbox": {"image": "reg/x@sha256:1"}}}', None])
def test_the_replay_writes_back_the_overlay_a_plain_build_writes(
    project: Path, daemon: FakeDaemon, overlay: str | None
) -> None:
    _record(project)
    path = project / "cache/overlay.json"
    if overlay is None:
        path.unlink()
    else:
        path.write_text(overlay)  # a publish pinned the registry digest
    assert _replay(project)
    assert path.read_text() == OVERLAY
