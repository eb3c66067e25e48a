"""The orchestrator overlay (builder/orchestrator/overlay.py): the keys the real server honours."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.core.errors import OverlayError
from builder.model.spec import SandboxSpec
from builder.model.specfile import load_spec
from builder.orchestrator.overlay import (
    KEY_TYPES,
    check_types,
    leaves,
    make_overlay,
    resource_warnings,
    write_overlay,
)

IMAGE_ID = "sha256:" + "4f" * 32
PUSHED = "127.0.0.1:5000/acme/sandbox@sha256:" + "9a" * 32

FULL = SandboxSpec(
    gvisor=True,
    egress_allowlist=("registry.npmjs.org", "api.github.com"),
    env_passthrough=("DATABASE_URL",),
    extra_mounts=("/home/user/.cache/pip:/home/agent/.cache/pip:ro",),
    network="agents-net",
    no_new_privileges=True,
    drop_capabilities=True,
    seccomp_profile="/etc/docker/seccomp.json",
    resources={"memory": "4g", "cpus": "2"},
    logs={"driver": "json-file", "max_size": "10m", "max_file": 5},
)

SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


def all_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from all_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from all_keys(item)


def test_full_overlay_is_snake_case_under_codex_sandbox() -> None:
    overlay = make_overlay(image_ref=IMAGE_ID, sandbox=FULL)

    assert list(overlay) == ["codex"]
    assert list(overlay["codex"]) == ["sandbox"]
    assert overlay["codex"]["sandbox"] == {
        "image": IMAGE_ID,
        "extra_mounts": ["/home/user/.cache/pip:/home/agent/.cache/pip:ro"],
        "env_passthrough": ["DATABASE_URL"],
        "egress_allowlist": ["registry.npmjs.org", "api.github.com"],
        "security": {
            "gvisor": True,
            "no_new_privileges": True,
            "drop_capabilities": True,
            "seccomp_profile": "/etc/docker/seccomp.json",
        },
        "resources": {"memory": "4g", "cpus": "2"},
        "logs": {"driver": "json-file", "max_size": "10m", "max_file": 5},
        "network": "agents-net",
    }


def test_no_camel_case_key_anywhere() -> None:
    keys = list(all_keys(make_overlay(image_ref=IMAGE_ID, sandbox=FULL)))

    assert keys
    for key in keys:
        assert SNAKE.fullmatch(key), key


def test_image_is_pinned_by_digest_exactly_as_given() -> None:
    local = make_overlay(image_ref=IMAGE_ID, sandbox=SandboxSpec())
    pushed = make_overlay(image_ref=PUSHED, sandbox=SandboxSpec())

    assert local["codex"]["sandbox"]["image"] == IMAGE_ID
    assert pushed["codex"]["sandbox"]["image"] == PUSHED
    assert ":latest" not in json.dumps(pushed)


def test_minimal_overlay_has_only_the_image_and_gvisor_off() -> None:
    assert make_overlay(image_ref=IMAGE_ID, sandbox=SandboxSpec()) == {
        "codex": {"sandbox": {"image": IMAGE_ID, "security": {"gvisor": False}}}
    }


def test_network_is_a_name_and_egress_allowlist_sits_directly_under_sandbox() -> None:
    settings = make_overlay(image_ref=IMAGE_ID, sandbox=FULL)["codex"]["sandbox"]

    assert isinstance(settings["network"], str)
    assert settings["egress_allowlist"] == ["registry.npmjs.org", "api.github.com"]


def test_overlay_from_a_parsed_spec_keeps_snake_case(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.toml"
    path.write_text(
        '[image]\nname = "acme/sandbox"\n[base]\nimage = "debian:bookworm-slim"\n'
        '[sandbox]\nenv_passthrough = ["DATABASE_URL"]\nextra_mounts = ["/a:/b:ro"]\n'
        'egress_allowlist = ["pypi.org"]\n[sandbox.security]\ngvisor = true\n'
    )

    overlay = make_overlay(image_ref=IMAGE_ID, sandbox=load_spec(path).sandbox)

    settings = overlay["codex"]["sandbox"]
    assert settings["env_passthrough"] == ["DATABASE_URL"]
    assert settings["extra_mounts"] == ["/a:/b:ro"]
    assert settings["egress_allowlist"] == ["pypi.org"]
    assert settings["security"] == {"gvisor": True}
    for key in all_keys(overlay):
        assert SNAKE.fullmatch(key), key


def test_write_overlay_is_json_with_sorted_keys_and_deterministic(tmp_path: Path) -> None:
    overlay = make_overlay(image_ref=IMAGE_ID, sandbox=FULL)
    first, second = tmp_path / "a.json", tmp_path / "b.json"

    write_overlay(overlay, first)
    write_overlay(make_overlay(image_ref=IMAGE_ID, sandbox=FULL), second)

    assert json.loads(first.read_text()) == overlay
    assert first.read_bytes() == second.read_bytes()
    assert first.read_text() == json.dumps(overlay, indent=2, sort_keys=True) + "\n"


# -- types as Risoluto reads them ---------------------------------------------------------------


def test_every_key_of_the_full_overlay_has_the_type_risoluto_reads() -> None:
    overlay = make_overlay(image_ref=IMAGE_ID, sandbox=FULL)

    check_types(overlay, "overlay.json")  # no error

    emitted = {".".join(path[2:]) for path, _ in leaves(overlay)}
    assert emitted <= set(KEY_TYPES)
    assert emitted == set(KEY_TYPES) - {
        "resources.memory_reservation",
        "resources.memory_swap",
        "resources.tmpfs_size",
    }


@pytest.mark.parametrize(
    ("sandbox", "named"),
    [
        ({"security": {"drop_capabilities": ["ALL"]}}, "codex.sandbox.security.drop_capabilities"),
        ({"security": {"gvisor": "true"}}, "codex.sandbox.security.gvisor"),
        ({"resources": {"memory": 4}}, "codex.sandbox.resources.memory"),
        ({"logs": {"max_file": "3"}}, "codex.sandbox.logs.max_file"),
        ({"extra_mounts": "/a:/b"}, "codex.sandbox.extra_mounts"),
        ({"extraMounts": ["/a:/b"]}, "codex.sandbox.extraMounts"),
        ({"Image": IMAGE_ID}, "codex.sandbox.Image"),
    ],
)
def test_a_key_risoluto_would_not_read_as_sent_is_refused_naming_it(
    sandbox: dict[str, Any], named: str
) -> None:
    overlay = {"codex": {"sandbox": {"image": IMAGE_ID, **sandbox}}}

    with pytest.raises(OverlayError) as caught:
        check_types(overlay, "cache/overlay.json")

    message = str(caught.value)
    assert caught.value.exit_code == 8
    assert named in message
    assert "codex.sandbox.image" not in message
    assert "Nothing was sent" in message


def test_a_key_outside_codex_sandbox_is_refused() -> None:
    with pytest.raises(OverlayError, match=r"server\.port is not under codex\.sandbox"):
        check_types({"server": {"port": 4001}}, "x.json")


def test_memory_over_4g_without_memory_swap_is_warned() -> None:
    [warning] = resource_warnings({"memory": "8g"})

    assert "memory = '8g' with memory_swap = '4g' (Risoluto's default)" in warning
    assert "Docker refuses" in warning
    assert resource_warnings({"memory": "8g", "memory_swap": "8g"}) == []
    assert resource_warnings({"memory": "8g", "memory_swap": "-1"}) == []
    assert resource_warnings({"memory": "4g"}) == []
    assert resource_warnings({}) == []


def test_memory_below_the_default_reservation_is_warned() -> None:
    [warning] = resource_warnings({"memory": "512m"})

    assert "memory_reservation = '1g' (Risoluto's default)" in warning
    assert resource_warnings({"memory": "512m", "memory_reservation": "256m"}) == []
