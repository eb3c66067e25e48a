"""The record of what `overlay apply` set per orchestrator (builder/orchestrator/applied.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.core.errors import CacheError
from builder.orchestrator import applied

URL = "http://127.0.0.1:4000"
FULL = {
    "codex": {
        "sandbox": {
            "image": "sha256:1",
            "extra_mounts": ["/a:/b:ro"],
            "network": "agents",
            "security": {"gvisor": False, "seccomp_profile": "/p.json"},
            "resources": {"cpus": "2"},
        }
    }
}
SMALL = {"codex": {"sandbox": {"image": "sha256:2", "security": {"gvisor": False}}}}


def test_the_first_apply_sets_every_leaf_and_removes_nothing() -> None:
    plan = applied.plan(FULL, URL, {})

    assert sorted(plan.set) == [
        "codex.sandbox.extra_mounts",
        "codex.sandbox.image",
        "codex.sandbox.network",
        "codex.sandbox.resources.cpus",
        "codex.sandbox.security.gvisor",
        "codex.sandbox.security.seccomp_profile",
    ]
    assert plan.set["codex.sandbox.extra_mounts"] == ["/a:/b:ro"]
    assert plan.remove == {}


def test_the_next_apply_removes_what_it_set_before_and_no_longer_sends(tmp_path: Path) -> None:
    applied.remember(tmp_path, URL, applied.plan(FULL, URL, {}).set)

    plan = applied.plan(SMALL, URL, applied.load(tmp_path))

    assert plan.remove == {
        "codex.sandbox.extra_mounts": ["/a:/b:ro"],
        "codex.sandbox.network": "agents",
        "codex.sandbox.resources.cpus": "2",
        "codex.sandbox.security.seccomp_profile": "/p.json",
    }
    assert plan.to_json() == {
        "url": URL,
        "set": ["codex.sandbox.image", "codex.sandbox.security.gvisor"],
        "remove": sorted(plan.remove),
    }
    assert plan.lines(would=True)[1].startswith(
        f"{URL}: would remove codex.sandbox.extra_mounts, codex.sandbox.network"
    )


def test_the_record_is_per_url(tmp_path: Path) -> None:
    other = "https://risoluto.example.com"
    applied.remember(tmp_path, URL, applied.plan(FULL, URL, {}).set)
    applied.remember(tmp_path, other, applied.plan(SMALL, other, {}).set)

    record = applied.load(tmp_path)

    assert applied.plan(SMALL, other, record).remove == {}
    assert len(applied.plan(SMALL, URL, record).remove) == 4


def test_a_key_that_became_an_object_or_a_value_is_not_removed() -> None:
    before = {URL: {"codex.sandbox.resources.cpus": "2", "codex.sandbox.logs": "x"}}
    overlay = {"codex": {"sandbox": {"resources": "4g", "logs": {"driver": "local"}}}}

    assert applied.plan(overlay, URL, before).remove == {}


@pytest.mark.parametrize("text", ["{not json", '{"version": 9, "urls": {}}', "[]"])
def test_a_corrupt_record_is_exit_6_naming_the_file(tmp_path: Path, text: str) -> None:
    (tmp_path / applied.FILE).write_text(text)

    with pytest.raises(CacheError) as caught:
        applied.load(tmp_path)

    assert caught.value.exit_code == 6
    assert str(tmp_path / applied.FILE) in str(caught.value)
