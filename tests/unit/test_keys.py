"""Node cache keys (builder/core/keys.py): what changes a key, and what must not."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from builder.core.keys import (
    canonical_bytes,
    canonical_json,
    content_digest,
    node_key,
    sha256_of,
)

INPUTS: dict[str, Any] = {
    "request": ["git", "jq"],
    "packages": [
        {"name": "git", "version": "1:2.39.5-0+deb12u1", "sha256": "c" * 64},
        {"name": "jq", "version": "1.6-2.1", "sha256": "d" * 64},
    ],
    "user": "agent",
}
PARENTS = {"base": "sha256:" + "a" * 64}


def key(**changes: Any) -> str:
    args: dict[str, Any] = {
        "recipe": "system/7",
        "inputs": INPUTS,
        "parents": PARENTS,
        "platform": "linux/amd64",
    }
    args.update(changes)
    return node_key(**args)


def test_key_is_a_sha256_and_stable() -> None:
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", key())
    assert key() == key()


def test_key_changes_when_a_pinned_input_changes() -> None:
    bumped = {
        **INPUTS,
        "packages": [INPUTS["packages"][0], {**INPUTS["packages"][1], "version": "1.7.1-3"}],
    }

    assert key(inputs=bumped) != key()


def test_key_changes_when_a_parent_key_changes() -> None:
    assert key(parents={"base": "sha256:" + "b" * 64}) != key()


def test_key_changes_when_a_parent_is_added() -> None:
    assert key(parents={**PARENTS, "runtime.node": "sha256:" + "f" * 64}) != key()


def test_key_changes_with_the_platform() -> None:
    assert key(platform="linux/arm64") != key()


def test_key_changes_with_the_recipe_of_the_kind() -> None:
    assert key(recipe="system/8") != key()


def test_key_ignores_dict_order_at_every_level() -> None:
    reordered_inputs = {
        "user": "agent",
        "packages": [
            {"sha256": p["sha256"], "version": p["version"], "name": p["name"]}
            for p in INPUTS["packages"]
        ],
        "request": ["git", "jq"],
    }
    parents = {"runtime.node": "sha256:" + "f" * 64, "base": PARENTS["base"]}
    reordered_parents = dict(reversed(list(parents.items())))

    assert key(inputs=reordered_inputs) == key()
    assert key(parents=parents) == key(parents=reordered_parents)


def test_sha256_of_is_the_hash_of_canonical_json() -> None:
    expected = hashlib.sha256(b'{"a":[1,2],"b":"\xc3\xa9"}').hexdigest()

    assert sha256_of({"b": "é", "a": [1, 2]}) == "sha256:" + expected


def test_documents_escape_non_ascii_where_keys_keep_it() -> None:
    """Both spellings are in images and locks already: neither may drift into the other."""
    value = {"b": "é", "a": [1, 2]}

    assert canonical_bytes(value) == b'{"a":[1,2],"b":"\\u00e9"}'
    assert canonical_json(value) == '{"a":[1,2],"b":"é"}'
    assert content_digest(b"x") == "sha256:" + hashlib.sha256(b"x").hexdigest()
