"""What an image keeps of its base's config, and who it runs as (builder/model/inherit.py).

Every field of the precedence rule, one test each where it has a case of its own, and the
users of a base: a uid the base gives another user (node:22's `node` holds 1000) is never
reused for `[image].user`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from builder.core.errors import ResolutionError
from builder.image.assemble import compose_env, image_config
from builder.model import inherit
from builder.model.fields import Fields
from builder.model.inputs import BaseInputs, SystemInputs
from builder.model.spec import ImageSpec
from builder.model.typed import read_inputs

# What `sandbox lock` records of an orchestrator image like risoluto-codex:latest.
ORCHESTRATOR: dict[str, Any] = {
    "Entrypoint": ["/usr/local/bin/risoluto-entry"],
    "Cmd": ["bash", "-l"],
    "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "CODEX_HOME=/home/agent/.codex", "TERM=dumb"],
    "Labels": {
        "org.example.orchestrator": "risoluto",
        "org.opencontainers.image.title": "risoluto-codex",
        "org.opencontainers.image.revision": "their-commit",
        "dev.sandbox-builder.node.tools.pip": "sha256:theirs",
    },
    "User": "1000:1000",
    "WorkingDir": "/home/agent",
    "Volumes": ["/home/agent/.codex", "/data"],
    "StopSignal": "SIGINT",
    "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30000000000},
    "Shell": ["/bin/bash", "-c"],
    "ExposedPorts": ["4000/tcp"],
    "OnBuild": ["RUN echo hi"],
}
OURS = {"org.opencontainers.image.title": "acme/extended", "dev.sandbox-builder.lock": "x"}
NODE_ENV: list[Mapping[str, str]] = [
    {"PATH": "/opt/sandbox/tools/pip/bin"},
    {"PATH": "/opt/sandbox/tools/npm/tsc/bin"},
]


def _config(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    env = compose_env(inherit.base_env(base), NODE_ENV)
    env.update({"LANG": "C.UTF-8"})
    args: dict[str, Any] = {"base": base, "env": env, "labels": OURS}
    args.update(changes)
    return inherit.container_config(**args)


def test_a_base_without_config_gives_the_config_bootstrapped_images_always_had() -> None:
    config = inherit.container_config(
        base={}, env={"PATH": "/bin", "LANG": "C"}, labels={"b": "2", "a": "1"},
        user="agent", workdir="/workspace",
    )  # fmt: skip

    assert config == {
        "Env": ["LANG=C", "PATH=/bin"],
        "Cmd": ["/bin/bash"],
        "Labels": {"a": "1", "b": "2"},
        "User": "agent",
        "WorkingDir": "/workspace",
    }
    assert json.dumps(config["Labels"]) == '{"a": "1", "b": "2"}', "sorted"


def test_entrypoint_cmd_volumes_stopsignal_healthcheck_and_shell_are_the_bases() -> None:
    config = _config(ORCHESTRATOR)

    assert config["Entrypoint"] == ["/usr/local/bin/risoluto-entry"]
    assert config["Cmd"] == ["bash", "-l"]
    assert config["Volumes"] == {"/home/agent/.codex": {}, "/data": {}}
    assert config["StopSignal"] == "SIGINT"
    assert config["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 30000000000}
    assert config["Shell"] == ["/bin/bash", "-c"]


def test_a_base_with_an_entrypoint_and_no_cmd_gets_no_cmd_of_ours() -> None:
    config = _config({"Entrypoint": ["/entry"]})

    assert config["Entrypoint"] == ["/entry"]
    assert "Cmd" not in config, "FROM keeps a null Cmd; /bin/bash would become its argument"


def test_env_is_the_bases_then_the_nodes_then_the_specs_with_path_composed() -> None:
    env = dict(e.split("=", 1) for e in _config(ORCHESTRATOR)["Env"])

    assert env["CODEX_HOME"] == "/home/agent/.codex"
    assert env["TERM"] == "dumb"
    assert env["LANG"] == "C.UTF-8"
    assert env["PATH"] == (
        "/opt/sandbox/tools/npm/tsc/bin:/opt/sandbox/tools/pip/bin:/usr/local/bin:/usr/bin:/bin"
    )


def test_labels_are_the_bases_and_ours_ours_winning_and_its_build_labels_dropped() -> None:
    """The base's standard labels describe the base's build (its revision is not ours)."""
    labels = _config(ORCHESTRATOR)["Labels"]

    assert labels == {
        "dev.sandbox-builder.lock": "x",
        "org.example.orchestrator": "risoluto",
        "org.opencontainers.image.title": "acme/extended",
    }


def test_exposed_ports_and_onbuild_are_dropped_and_said() -> None:
    config = _config(ORCHESTRATOR)

    assert "ExposedPorts" not in config
    assert "OnBuild" not in config
    notes = inherit.dropped(ORCHESTRATOR)
    assert notes[0] == (
        "the base exposes 4000/tcp; the image exposes no port (the security baseline)"
    )
    assert "1 ONBUILD trigger(s) are not run" in notes[1]
    assert inherit.dropped({"Cmd": ["x"]}) == []


def test_user_and_workdir_are_the_system_nodes_else_the_bases() -> None:
    kept = SystemInputs(request=(), user="", workdir="", packages=())
    ours = SystemInputs(request=(), user="sandbox", uid=1001, workdir="/workspace", packages=())

    assert inherit.effective_user(kept, ORCHESTRATOR) == "1000:1000"
    assert inherit.effective_workdir(kept, ORCHESTRATOR) == "/home/agent"
    assert inherit.effective_user(ours, ORCHESTRATOR) == "sandbox"
    assert inherit.effective_workdir(ours, ORCHESTRATOR) == "/workspace"
    config = _config(ORCHESTRATOR, user="sandbox", workdir="/workspace")
    assert (config["User"], config["WorkingDir"]) == ("sandbox", "/workspace")


def test_the_image_id_depends_on_the_recorded_config_alone() -> None:
    def image_id(base: dict[str, Any]) -> str:
        config = image_config(
            layers=[], env={"PATH": "/bin"}, platform="linux/amd64", epoch=0, base=base
        )
        return config.image_id

    same = json.loads(json.dumps(ORCHESTRATOR))
    assert image_id(ORCHESTRATOR) == image_id(same)
    assert image_id(ORCHESTRATOR) != image_id({**ORCHESTRATOR, "StopSignal": "SIGTERM"})


@pytest.mark.parametrize(
    ("user", "root"), [("", True), ("root", True), ("0", True), ("0:0", True), ("1000:0", False)]
)
def test_root_in_every_form_docker_accepts(user: str, root: bool) -> None:
    assert inherit.is_root(user) is root


# -- who the image runs as --------------------------------------------------------------------

UNSET = ImageSpec(name="acme/x", inherit=("user", "workdir"))
NODE_USERS = [{"name": "root", "uid": 0}, {"name": "node", "uid": 1000}]


BOOT = {"suite": "bookworm", "mirror": "http://deb.debian.org/debian", "variant": "minbase"}


def _base(inputs: dict[str, Any]) -> BaseInputs:
    """A base's locked inputs: an image's pin with `inputs` (or a bootstrap base's)."""
    return read_inputs(
        BaseInputs, Fields({"image": "acme/base", "pinned": "acme/base@sha256:0", **inputs}, "base")
    )


def test_a_bootstrapped_base_gets_the_spec_user_at_uid_1000_as_always() -> None:
    choice = inherit.choose_user(
        ImageSpec(name="acme/x"), _base({"bootstrap": BOOT, "packages": []})
    )

    assert choice == inherit.UserChoice(
        user="agent", uid=1000, workdir="/workspace", owner="", note=""
    )


def test_unset_user_and_workdir_keep_the_bases() -> None:
    choice = inherit.choose_user(UNSET, _base({"config": ORCHESTRATOR, "users": NODE_USERS}))

    assert (choice.user, choice.uid, choice.workdir) == ("", None, "")
    assert choice.note == "the image runs as the base's user 1000:1000 ([image].user is not set)"


def test_a_workdir_of_ours_under_the_bases_user_is_owned_by_that_user() -> None:
    spec = ImageSpec(name="acme/x", workdir="/src", inherit=("user",))

    choice = inherit.choose_user(spec, _base({"config": ORCHESTRATOR, "users": NODE_USERS}))

    assert (choice.user, choice.workdir, choice.owner) == ("", "/src", "1000:1000")


def test_a_base_without_workdir_gets_ours() -> None:
    choice = inherit.choose_user(UNSET, _base({"config": {"User": "node"}, "users": NODE_USERS}))

    assert choice.workdir == "/workspace"
    assert choice.owner == "node"


def test_a_base_running_as_root_gets_the_default_user_never_root() -> None:
    base = {"config": {"User": "root"}, "users": [{"name": "root", "uid": 0}]}

    choice = inherit.choose_user(UNSET, _base(base))

    assert (choice.user, choice.uid) == ("agent", 1000)
    assert (
        choice.note
        == "the base runs as root; the image runs as agent (uid 1000), made by the system layer"
    )


def test_a_uid_the_base_gives_another_user_is_not_taken_the_next_free_one_is() -> None:
    # node:22 has `node` at uid 1000; the spec asks for `agent`.
    users = [*NODE_USERS, {"name": "ci", "uid": 1001}]
    spec = ImageSpec(name="acme/x", user="agent")

    choice = inherit.choose_user(spec, _base({"config": {"User": "node"}, "users": users}))

    assert (choice.user, choice.uid) == ("agent", 1002)
    assert choice.note == "uid 1000 is node's in the base, so user agent gets uid 1002"


def test_a_user_the_base_already_has_is_reused_with_its_uid() -> None:
    spec = ImageSpec(name="acme/x", user="node")

    choice = inherit.choose_user(spec, _base({"config": {"User": "root"}, "users": NODE_USERS}))

    assert (choice.user, choice.uid) == ("node", 1000)
    assert choice.note == "user node is the base's own (uid 1000): reused"


def test_a_user_name_that_is_root_in_the_base_is_refused() -> None:
    users = [{"name": "root", "uid": 0}, {"name": "toor", "uid": 0}]

    with pytest.raises(ResolutionError) as caught:
        inherit.choose_user(ImageSpec(name="acme/x", user="toor"), _base({"users": users}))

    assert "'toor' is uid 0 (root) in the base image" in str(caught.value)
    assert caught.value.exit_code == 4
