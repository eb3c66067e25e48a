"""The files handed to pip and npm are rendered from lock pins, deterministically."""

from __future__ import annotations

import json

import pytest

from builder.resolve import managers

LOCK = {
    "name": "sandbox-tools",
    "lockfileVersion": 3,
    "requires": True,
    "packages": {
        "": {"name": "sandbox-tools", "dependencies": {"typescript": "5"}},
        "node_modules/typescript": {
            "version": "5.9.3",
            "resolved": "https://registry.npmjs.org/typescript/-/typescript-5.9.3.tgz",
            "integrity": "sha512-abc",
            "license": "Apache-2.0",
            "bin": {"tsc": "bin/tsc"},
            "engines": {"node": ">=14.17"},
        },
    },
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("typescript", ("typescript", "*")),
        ("typescript@5", ("typescript", "5")),
        ("@openai/codex", ("@openai/codex", "*")),
        ("@openai/codex@0.1.2", ("@openai/codex", "0.1.2")),
        ("turbo@>=2 <3", ("turbo", ">=2 <3")),
    ],
)
def test_npm_dependency_splits_name_and_range(spec: str, expected: tuple[str, str]) -> None:
    assert managers.npm_dependency(spec) == expected


def test_package_json_lists_every_tool_sorted() -> None:
    text = managers.npm_package_json(["typescript@5", "@openai/codex"])
    assert json.loads(text)["dependencies"] == {"@openai/codex": "*", "typescript": "5"}
    assert text == managers.npm_package_json(["@openai/codex", "typescript@5"])


def test_pins_keep_what_npm_ci_needs_and_drop_the_rest() -> None:
    pins = managers.npm_packages_from_lock(LOCK)
    assert pins == [
        {
            "path": "node_modules/typescript",
            "version": "5.9.3",
            "resolved": "https://registry.npmjs.org/typescript/-/typescript-5.9.3.tgz",
            "integrity": "sha512-abc",
            "bin": {"tsc": "bin/tsc"},
        }
    ]


def test_package_lock_round_trips_through_the_pins() -> None:
    pins = managers.npm_packages_from_lock(LOCK)
    rebuilt = json.loads(managers.npm_package_lock(["typescript@5"], pins))
    assert rebuilt["lockfileVersion"] == 3
    assert rebuilt["packages"][""]["dependencies"] == {"typescript": "5"}
    assert managers.npm_packages_from_lock(rebuilt) == pins


def test_pip_requirements_pin_every_package_with_its_hash() -> None:
    text = managers.pip_requirements([{"name": "ruff", "version": "0.6.9", "sha256": "a" * 64}])
    assert text == f"ruff==0.6.9 --hash=sha256:{'a' * 64}\n"


@pytest.mark.parametrize(
    "pin",
    [
        {"name": "ruff; rm -rf /", "version": "1", "sha256": "a" * 64},
        {"name": "ruff", "version": "1 --index-url http://evil", "sha256": "a" * 64},
        {"name": "ruff", "version": "1", "sha256": "nothex"},
    ],
)
def test_pip_requirements_refuse_anything_but_a_pin(pin: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="not a pin"):
        managers.pip_requirements([pin])


def test_a_tools_closure_follows_nodes_lookup_and_nothing_else() -> None:
    def pin(path: str, **deps: str) -> dict[str, object]:
        return {"path": path, "version": "1.0.0", "dependencies": deps}

    packages = [
        pin("node_modules/@s/tool-a", shared="^1", x="^2"),
        pin("node_modules/@s/tool-a/node_modules/x", deep="^1"),  # nested: a's own x@2
        pin("node_modules/deep"),
        pin("node_modules/shared"),
        pin("node_modules/tool-b", shared="^1", x="^1"),
        pin("node_modules/x"),  # x@1, b's
        pin("node_modules/unused"),
    ]
    closure_a = [p["path"] for p in managers.npm_closure(packages, "@s/tool-a")]
    assert closure_a == [
        "node_modules/@s/tool-a",
        "node_modules/@s/tool-a/node_modules/x",
        "node_modules/deep",
        "node_modules/shared",
    ]
    closure_b = [p["path"] for p in managers.npm_closure(packages, "tool-b")]
    assert closure_b == ["node_modules/shared", "node_modules/tool-b", "node_modules/x"]
    assert managers.npm_closure(packages, "missing") == []
