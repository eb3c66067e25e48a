"""Two projects share the nodes they have in common through the user-wide store (issue 9).

Two folders, each with its own default `cache/` beside its sandbox.toml (SANDBOX_CACHE_DIR
is not set), one SANDBOX_STORE_DIR for both: the user's store, here a fresh folder, so the
first project builds its base itself (about 40 s of debootstrap). Both ask for the same
bootstrap base and system packages; B adds a vendored [tools.bin] archive. B's base and
system are then cache hits from the store, with A's keys and layers, hard linked into B's
cache; only B's own node builds.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import docker

pytestmark = pytest.mark.docker

SPEC = """
[image]
name = "sandbox-test/shared-{name}"
user = "agent"

[base]
bootstrap = {{ suite = "bookworm" }}

[system]
packages = ["jq"]
"""

HELLO = """
[tools.bin.hello]
version = "0.1"
path = "vendor/hello.tar.gz"
"""


def _sandbox(root: Path, *args: str, store: Path) -> str:
    """`sandbox -f root/sandbox.toml ARGS` with the default cache dir and `store`."""
    env = {k: v for k, v in os.environ.items() if k != "SANDBOX_CACHE_DIR"}
    env["SANDBOX_STORE_DIR"] = str(store)
    done = subprocess.run(
        [sys.executable, "-m", "builder", "-f", str(root / "sandbox.toml"), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=1800,
    )
    assert done.returncode == 0, (
        f"sandbox {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    )
    return done.stdout


def _project(root: Path, text: str) -> Path:
    root.mkdir()
    (root / "sandbox.toml").write_text(text)
    return root


def _hello_archive(dest: Path) -> None:
    """A tar.gz holding `hello/bin/hello`, a shell script printing "hi"."""
    dest.parent.mkdir(parents=True)
    body = b"#!/bin/sh\necho hi\n"
    with tarfile.open(dest, "w:gz") as tar:
        info = tarfile.TarInfo("hello/bin/hello")
        info.size, info.mode = len(body), 0o755
        tar.addfile(info, io.BytesIO(body))


def _nodes(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in result["nodes"]}


def _layer_file(cache: Path, diff_id: str) -> Path:
    return cache / "layers" / f"{diff_id.removeprefix('sha256:')}.tar"


def test_a_second_project_reuses_the_first_ones_base_and_system(tmp_path: Path) -> None:
    store = tmp_path / "store"
    a = _project(tmp_path / "a", SPEC.format(name="a"))
    b = _project(tmp_path / "b", SPEC.format(name="b") + HELLO)
    _hello_archive(b / "vendor" / "hello.tar.gz")

    _sandbox(a, "lock", store=store)
    built_a = _nodes(json.loads(_sandbox(a, "build", "--json", store=store)))
    assert set(built_a) == {"base", "system"}
    assert built_a["system"]["status"] == "built"
    assert (a / "cache" / "logs" / "base.log").exists(), "A did not build its own base"

    _sandbox(b, "lock", store=store)
    result_b = json.loads(_sandbox(b, "build", "--json", store=store))
    built_b = _nodes(result_b)

    assert {n: s["status"] for n, s in built_b.items()} == {
        "base": "cached",
        "system": "cached",
        "tools.bin.hello": "built",
    }
    for name in ("base", "system"):
        assert built_b[name]["key"] == built_a[name]["key"], name
        assert built_b[name]["layer"] == built_a[name]["layer"], name
        assert not (b / "cache" / "logs" / f"{name}.log").exists(), f"B built {name} itself"
        mine = _layer_file(b / "cache", built_b[name]["layer"])
        shared = _layer_file(store, built_b[name]["layer"])
        theirs = _layer_file(a / "cache", built_a[name]["layer"])
        assert mine.stat().st_dev == shared.stat().st_dev == theirs.stat().st_dev
        assert mine.stat().st_ino == shared.stat().st_ino == theirs.stat().st_ino, name
    assert (b / "cache" / "nodes" / f"{built_b['system']['key'][7:]}.json").exists()

    image = result_b["image"]["id"]
    out = docker("run", "--rm", "--user", "12345:12345", image, "sh", "-c", "hello; jq --version")
    assert out.splitlines()[0] == "hi"
    assert out.splitlines()[1].startswith("jq-1.6")
