"""One lock, any engine (issue 16): Docker 20.10 on this machine, and Docker 28.5 with the
containerd image store and with overlay2, each a daemon in a container that shares no folder
with us, reached over TCP (the overlay2 one over TLS with certificates made by the test).

The lock is made on the containerd store (where `sandbox lock` died with a traceback). Each
engine builds everything but the base itself (the debootstrapped base is a host step, so its
cache entry is handed to each engine's fresh cache), gives the same diff IDs and the same
config digest, and runs the image. The containerd store names the image by its manifest
digest: `--json` says so and the overlay pins that.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Project
from tests.integration.engines import Engine

pytestmark = pytest.mark.docker

SPEC = """
[image]
name = "sandbox-test/engines"
user = "agent"

[base]
bootstrap = { suite = "bookworm" }

[system]
packages = ["git", "jq"]

[runtimes]
node = { version = "22", provider = "pypi" }

[tools]
pip = ["pyflakes==3.2.0"]
npm = ["semver@7.6.3"]
"""

SPEC_LATEST = "sandbox-test/engines:latest"
RUN = "jq --version && node --version && semver 1.2.3 && pyflakes --version && git --version"


def _docker(engine: Engine, *args: str) -> str:
    done = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **engine.env},
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, f"docker {' '.join(args)} on {engine.name}: {done.stderr}"
    return done.stdout.strip()


def _layers(result: dict[str, Any]) -> dict[str, str]:
    return {n["name"]: n["layer"] for n in result["nodes"]}


def _with_bases(cache: Path, tmp: Path, name: str) -> Project:
    """A fresh project cache holding only the base nodes of `cache` (the session's)."""
    fresh = tmp / f"cache-{name}"
    (fresh / "nodes").mkdir(parents=True)
    (fresh / "layers").mkdir()
    for entry in (cache / "nodes").glob("*.json"):
        data = json.loads(entry.read_text())
        if data.get("name") != "base":
            continue
        shutil.copy(entry, fresh / "nodes")
        for layer in data["layers"]:
            tar = f"{layer['diff_id'].removeprefix('sha256:')}.tar"
            if not (fresh / "layers" / tar).exists():
                os.link(cache / "layers" / tar, fresh / "layers" / tar)
    other = Project(root=tmp / f"project-{name}", cache=fresh)
    other.root.mkdir()
    other.write(SPEC)
    return other


def test_one_lock_builds_the_same_image_on_docker_20_and_28(
    project: Project,
    base_image: str,
    docker28_containerd: Engine,
    docker28_overlay2_tls: Engine,
    tmp_path: Path,
) -> None:
    ctd = _with_bases(project.cache, tmp_path, "containerd")
    ctd_env = {**docker28_containerd.env, "SANDBOX_STORE_DIR": str(tmp_path / "store-ctd")}
    locked = ctd.sandbox("lock", env=ctd_env)  # this died with a traceback there
    assert locked.code == 0, locked.err
    project.write(SPEC)
    shutil.copy(ctd.lock, project.lock)
    host = json.loads(project.ok("build", "--json").out)
    assert host["image"]["engine_id"] == host["image"]["id"]

    ovl = _with_bases(project.cache, tmp_path, "overlay2")
    shutil.copy(ctd.lock, ovl.lock)
    ovl_env = {**docker28_overlay2_tls.env, "SANDBOX_STORE_DIR": str(tmp_path / "store-ovl")}
    for engine, other, env in (
        (docker28_containerd, ctd, ctd_env),
        (docker28_overlay2_tls, ovl, ovl_env),
    ):
        run = other.sandbox("build", "--json", env=env)
        assert run.code == 0, f"build on {engine.name} ({engine.storage}):\n{run.err}"
        built = json.loads(run.out)
        statuses = {n["name"]: n["status"] for n in built["nodes"]}
        assert statuses["tools.npm"] == statuses["tools.pip"] == "built"
        assert _layers(built) == _layers(host), f"a layer differs on {engine.storage}"
        assert built["image"]["id"] == host["image"]["id"], "another config digest"
        ref = built["image"]["engine_id"]
        overlay = json.loads(Path(built["overlay"]).read_text())
        assert overlay["codex"]["sandbox"]["image"] == ref == built["image"]["ref"]
        out = _docker(engine, "run", "--rm", "--user", "12345:12345", ref, "sh", "-c", RUN)
        for expected in ("jq-1", "v22.", "1.2.3", "git version"):
            assert expected in out, f"{engine.storage}: {out}"
        if engine is docker28_containerd:
            assert ref != built["image"]["id"], "the containerd store names it by manifest"
            listed = _docker(engine, "image", "inspect", "-f", "{{.Id}}", SPEC_LATEST)
            assert listed == ref
            checked = other.sandbox("check", env=env)
            assert checked.code == 0, checked.out + checked.err
            again = other.sandbox("build", "--json", env=env)
            assert again.code == 0, again.err
            assert {n["status"] for n in json.loads(again.out)["nodes"]} == {"cached"}
            assert json.loads(again.out)["image"] == built["image"]
        else:
            assert ref == built["image"]["id"]


def test_tls_settings_the_engine_refuses_are_a_clear_error(
    project: Project, docker28_overlay2_tls: Engine, tmp_path: Path
) -> None:
    project.write(SPEC)
    wrong = tmp_path / "wrong-certs"
    shutil.copytree(docker28_overlay2_tls.env["DOCKER_CERT_PATH"], wrong)
    shutil.copy(wrong / "server-cert.pem", wrong / "ca.pem")  # a CA that signed nothing here
    for env in (
        {**docker28_overlay2_tls.env, "DOCKER_CERT_PATH": str(wrong)},
        {"DOCKER_HOST": docker28_overlay2_tls.host},  # no TLS at all
    ):
        run = project.sandbox("doctor", env=env)
        said = run.out + run.err
        assert run.code == 1, said
        assert "Traceback" not in said
        assert f"Docker Engine at {docker28_overlay2_tls.host}" in said
        assert "unreachable" in said
        assert "DOCKER_CERT_PATH holding the engine's ca.pem" in said
