"""Publishing to a real registry and a teammate's build pulling instead of building (issue 5).

The registry is Debian's docker-registry on 127.0.0.1; `skopeo` checks what reached it,
independently of this tool. The teammate is a second, clean Docker daemon with an empty
cache dir and the same sandbox.lock.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from typing import Any, cast

import pytest

from tests.integration import risoluto_server
from tests.integration.conftest import Project, docker

pytestmark = pytest.mark.docker
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"

SPEC = """
[image]
name = "sandbox-test/published"
registry = "{registry}"

[base]
bootstrap = {{ suite = "bookworm" }}

[system]
packages = ["jq"]

[tools]
pip = ["ruff"]
"""


def _skopeo_digest(ref: str) -> str:
    done = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(done.stdout)["Digest"])


def _skopeo_raw(ref: str, *, config: bool = False) -> dict[str, Any]:
    """The manifest (or image config) of `ref`, as the registry holds it."""
    extra = ["--config"] if config else []
    done = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", *extra, f"docker://{ref}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return cast(dict[str, Any], json.loads(done.stdout))


def _blob_head(registry: str, repo: str, digest: str) -> bytes:
    """The first bytes of a blob, read through the registry API."""
    url = f"http://{registry}/v2/{repo}/blobs/{digest}"
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with no_proxy.open(url, timeout=30) as response:
        return bytes(response.read(10))


def test_push_then_a_clean_machine_pulls_every_node_and_gets_the_same_image(
    project: Project,
    base_image: str,
    registry: str,
    second_engine: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    project.write(SPEC.format(registry=registry))
    project.ok("lock")
    pushed = json.loads(project.ok("build", "--push", "--json").out)
    ref = pushed["image"]["ref"]
    assert ref.startswith(f"{registry}/sandbox-test/published@sha256:")
    assert _skopeo_digest(ref) == ref.split("@", 1)[1]
    overlay = json.loads((project.cache / "overlay.json").read_text())
    assert overlay["codex"]["sandbox"]["image"] == ref

    # Layers travel gzip-compressed, deterministically (mtime 0, no name, OS "unknown"), while
    # the image config still names the uncompressed diff IDs.
    pushed_manifest = _skopeo_raw(ref)
    layer_types = {la["mediaType"] for la in pushed_manifest["layers"]}
    assert layer_types == {"application/vnd.oci.image.layer.v1.tar+gzip"}
    first = pushed_manifest["layers"][0]["digest"]
    assert _blob_head(registry, "sandbox-test/published", first) == GZIP_HEADER
    diff_ids = _skopeo_raw(ref, config=True)["rootfs"]["diff_ids"]
    assert {n["layer"] for n in pushed["nodes"]} <= set(diff_ids)
    assert not {la["digest"] for la in pushed_manifest["layers"]} & set(diff_ids)

    # Pushing again uploads nothing new and names the same digest; the overlay it writes is
    # applied to the orchestrator, merged into what the server already had.
    url, server, stop = risoluto_server.start(
        token="s3cret", overlay={"codex": {"model": "o3", "sandbox": {"gvisor": True}}}
    )
    try:
        run = project.sandbox(
            "publish", "--json", "--apply", url, env={"RISOLUTO_WRITE_TOKEN": "s3cret"}
        )
        assert run.code == 0, run.err
        again = json.loads(run.out)
        assert again["image"]["ref"] == ref
        assert again["applied"]["ok"] is True
        assert server.overlay["codex"]["sandbox"]["image"] == ref
        assert server.overlay["codex"]["model"] == "o3", "apply replaced the server's keys"
        wrong = project.sandbox("overlay", "apply", url, env={"RISOLUTO_WRITE_TOKEN": "nope"})
        assert wrong.code == 8, wrong.err
        assert "nope" not in wrong.err
    finally:
        stop()

    teammate = Project(root=project.root, cache=tmp_path_factory.mktemp("teammate-cache"))
    # Another machine: its own daemon, cache dir and user-wide node store.
    elsewhere = {
        "DOCKER_HOST": second_engine,
        "SANDBOX_STORE_DIR": str(tmp_path_factory.mktemp("teammate-store")),
    }
    run = teammate.sandbox("build", "--json", env=elsewhere)
    assert run.code == 0, run.err
    theirs = json.loads(run.out)
    assert {n["status"] for n in theirs["nodes"]} == {"pulled"}, theirs["nodes"]
    assert theirs["image"]["id"] == pushed["image"]["id"]

    # The teammate's cache compresses the same layers to the same blobs: publishing from it
    # uploads nothing and names the same manifest.
    shutil.rmtree(teammate.cache / "blobs")  # as if it had built the layers itself
    run = teammate.sandbox("publish", "--json", env=elsewhere)
    assert run.code == 0, run.err
    assert json.loads(run.out)["image"]["ref"] == ref
    assert "(0 new blobs)" in run.err, run.err

    # The pushed image itself is what Docker pulls by digest, with the same image ID.
    docker("-H", second_engine, "pull", ref)
    pulled_id = docker("-H", second_engine, "image", "inspect", "-f", "{{.Id}}", ref)
    assert pulled_id == pushed["image"]["id"]


def test_an_unreachable_registry_is_exit_7(project: Project, base_image: str) -> None:
    project.write(SPEC.format(registry="127.0.0.1:9"))
    project.ok("lock")
    run = project.sandbox("build", "--push")
    assert run.code == 7, run.err
    assert "127.0.0.1:9" in run.err
