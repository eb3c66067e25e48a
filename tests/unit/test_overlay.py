"""The orchestrator overlay (builder/overlay.py): the keys the real server honours."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from builder.overlay import make_overlay, write_overlay
from builder.spec import SandboxSpec, load_spec

IMAGE_ID = "sha256:" + "4f" * 32
PUSHED = "127.0.0.1:5000/acme/sandbox@sha256:" + "9a" * 32

FULL = SandboxSpec(
    gvisor=True,
    egress_allowlist=("registry.npmjs.org", "api.github.com"),
    env_passthrough=("DATABASE_URL",),
    extra_mounts=("/home/user/.cache/pip:/home/agent/.cache/pip:ro",),
    network="agents-net",
    no_new_privileges=True,
    drop_capabilities=("ALL",),
    seccomp_profile="/etc/docker/seccomp.json",
    resources={"memory": "4g", "cpus": "2"},
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
            "drop_capabilities": ["ALL"],
            "seccomp_profile": "/etc/docker/seccomp.json",
        },
        "resources": {"memory": "4g", "cpus": "2"},
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
