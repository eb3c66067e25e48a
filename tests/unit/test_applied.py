"""The record of what `overlay apply` set per orchestrator (builder/orchestrator/applied.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def on_server(overlay: dict[str, Any]) -> dict[str, Any]:
    """Risoluto's overlay once `overlay` was applied: the overlay and its record."""
    return {**overlay, **applied.record(overlay)}


def test_the_first_apply_sets_every_leaf_and_removes_nothing() -> None:
    plan = applied.plan(FULL, URL, stored={})

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


def test_the_record_is_a_sorted_list_of_keys_and_digests_no_values() -> None:
    entries = applied.record(FULL)["sandbox_builder"]["applied"]

    assert entries == sorted(entries)
    assert entries[0] == f"codex.sandbox.extra_mounts={applied.digest(['/a:/b:ro'])}"
    assert "/a:/b:ro" not in str(entries)  # a mount path or a secret is not written twice
    assert applied.recorded(on_server(FULL))["codex.sandbox.network"] == applied.digest("agents")


def test_the_next_apply_removes_what_the_server_records_and_it_no_longer_sends() -> None:
    plan = applied.plan(SMALL, URL, stored=on_server(FULL))

    assert sorted(plan.remove) == [
        "codex.sandbox.extra_mounts",
        "codex.sandbox.network",
        "codex.sandbox.resources.cpus",
        "codex.sandbox.security.seccomp_profile",
    ]
    assert plan.left == ()
    assert plan.to_json() == {
        "url": URL,
        "set": ["codex.sandbox.image", "codex.sandbox.security.gvisor"],
        "remove": sorted(plan.remove),
        "left": [],
    }
    assert plan.lines(would=True)[1].startswith(
        f"{URL}: would remove codex.sandbox.extra_mounts, codex.sandbox.network"
    )


def test_a_recorded_key_someone_changed_since_is_left_and_said() -> None:
    stored = on_server(FULL)
    stored["codex"]["sandbox"]["network"] = "operators-net"

    plan = applied.plan(SMALL, URL, stored=stored)

    assert "codex.sandbox.network" not in plan.remove
    assert plan.left == ("codex.sandbox.network",)
    assert "would leave codex.sandbox.network" in plan.lines(would=True)[2]


def test_keys_nobody_recorded_are_the_operators_and_stay() -> None:
    stored = {"codex": {"model": "o3", "sandbox": {"network": "agents"}}}

    assert applied.plan(SMALL, URL, stored=stored).remove == {}


def test_this_checkouts_own_record_counts_where_the_server_has_none(tmp_path: Path) -> None:
    """An apply made before the record moved to the server left it only here."""
    applied.remember(tmp_path, URL, {"codex.sandbox.network": "agents"})
    here = applied.load(tmp_path)[URL]

    plan = applied.plan(SMALL, URL, stored={"codex": {"sandbox": {"network": "agents"}}}, here=here)

    assert sorted(plan.remove) == ["codex.sandbox.network"]


def test_offline_the_plan_is_this_checkouts_record_alone(tmp_path: Path) -> None:
    applied.remember(tmp_path, URL, applied.plan(FULL, URL, stored={}).set)

    plan = applied.plan(SMALL, URL, stored=None, here=applied.load(tmp_path)[URL])

    assert len(plan.remove) == 4
    assert not plan.asked


def test_a_key_that_became_an_object_or_a_value_is_not_removed() -> None:
    stored = on_server({"codex": {"sandbox": {"resources": {"cpus": "2"}, "logs": "x"}}})
    overlay = {"codex": {"sandbox": {"resources": "4g", "logs": {"driver": "local"}}}}

    assert applied.plan(overlay, URL, stored=stored).remove == {}


@pytest.mark.parametrize("text", ["{not json", '{"version": 9, "urls": {}}', "[]"])
def test_a_corrupt_record_is_exit_6_naming_the_file(tmp_path: Path, text: str) -> None:
    (tmp_path / applied.FILE).write_text(text)

    with pytest.raises(CacheError) as caught:
        applied.load(tmp_path)

    assert caught.value.exit_code == 6
    assert str(tmp_path / applied.FILE) in str(caught.value)
