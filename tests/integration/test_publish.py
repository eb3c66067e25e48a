"""Publishing to a real registry and a teammate's build pulling instead of building (issue 5).

The registry is Debian's docker-registry on 127.0.0.1; `skopeo` checks what reached it,
independently of this tool. The teammate is a second, clean Docker daemon with an empty
cache dir and the same sandbox.lock.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.integration import risoluto_server
from tests.integration.conftest import Project, docker

pytestmark = pytest.mark.docker

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
    run = teammate.sandbox("build", "--json", env={"DOCKER_HOST": second_engine})
    assert run.code == 0, run.err
    theirs = json.loads(run.out)
    assert {n["status"] for n in theirs["nodes"]} == {"pulled"}, theirs["nodes"]
    assert theirs["image"]["id"] == pushed["image"]["id"]

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
