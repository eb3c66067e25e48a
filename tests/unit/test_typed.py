"""read_inputs/write_inputs (model/typed.py) read any frozen dataclass from a lock table and
give the table back, here for classes declared outside builder/model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

import pytest

from builder.core.errors import LockError
from builder.model.fields import Fields
from builder.model.typed import REST, Variants, key_from, read_inputs, write_inputs


class Flavour(StrEnum):
    PLAIN = "plain"
    SPICY = "spicy"


@dataclass(frozen=True, kw_only=True)
class Part:
    name: str
    sha256: str | None = None


@dataclass(frozen=True, kw_only=True)
class Recipe:
    flavour: Flavour
    steps: tuple[str, ...]
    parts: tuple[Part, ...]
    main: Part
    sums: Mapping[str, str]
    extras: Mapping[str, Part]
    raw: Mapping[str, Any]
    count: int
    fresh: bool = False
    note: str | None = None
    tool: Part | None = field(default=None, metadata=key_from("flavour"))


@dataclass(frozen=True, kw_only=True)
class Entry:
    path: str
    rest: Mapping[str, Any] = field(metadata=REST)


RECIPE: dict[str, Any] = {
    "flavour": "spicy",
    "steps": ["chop", "fry"],
    "parts": [{"name": "b", "sha256": "1"}, {"name": "a"}],
    "main": {"name": "m"},
    "sums": {"x": "2"},
    "extras": {"z": {"name": "z"}, "y": {"name": "y", "sha256": "3"}},
    "raw": {"Cmd": ["sh"], "Labels": {"k": "v"}},
    "count": 0,
    "fresh": True,
    "spicy": {"name": "chili"},
}


def test_a_dataclass_declared_anywhere_is_read_typed_and_written_back_as_it_was() -> None:
    recipe = read_inputs(Recipe, Fields(RECIPE, "r"))

    assert recipe.flavour is Flavour.SPICY
    assert recipe.parts == (Part(name="b", sha256="1"), Part(name="a"))
    assert recipe.extras["y"] == Part(name="y", sha256="3")
    assert recipe.tool == Part(name="chili")
    assert recipe.note is None
    assert write_inputs(recipe) == RECIPE
    assert [list(part) for part in write_inputs(recipe)["parts"]] == [["name", "sha256"], ["name"]]


def test_a_default_is_left_out_of_the_table_and_taken_when_its_key_is_absent() -> None:
    plain = {k: v for k, v in RECIPE.items() if k not in ("fresh", "spicy")}
    recipe = read_inputs(Recipe, Fields({**plain, "flavour": "plain"}, "r"))

    assert (recipe.fresh, recipe.tool) == (False, None)
    assert write_inputs(recipe) == {**plain, "flavour": "plain"}


def test_a_rest_field_holds_every_other_key_in_its_order() -> None:
    table = {"path": "node_modules/a", "version": "1.0.0", "bin": {"a": "cli.js"}}
    entry = read_inputs(Entry, Fields(table, "e"))

    assert entry.rest == {"version": "1.0.0", "bin": {"a": "cli.js"}}
    assert list(write_inputs(entry)) == ["path", "version", "bin"]


@dataclass(frozen=True, kw_only=True)
class Shape:
    variants: ClassVar[Variants]
    size: int


@dataclass(frozen=True, kw_only=True)
class Round(Shape):
    radius: int


@dataclass(frozen=True, kw_only=True)
class Square(Shape):
    side: int


Shape.variants = Variants(key="radius", present=Round, absent=Square)


def test_variants_pick_the_subclass_a_table_is_by_its_key() -> None:
    assert read_inputs(Shape, Fields({"size": 1, "radius": 2}, "s")) == Round(size=1, radius=2)
    assert read_inputs(Shape, Fields({"size": 1, "side": 3}, "s")) == Square(size=1, side=3)


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("count", True, "lock: nodes.r.inputs.count is missing or not an integer"),
        ("flavour", "mild", "inputs.flavour is missing or not one of plain, spicy"),
        ("parts", [{"name": 1}], "inputs.parts[0].name is missing or not a string"),
        ("extras", {"z": {}}, "inputs.extras.z.name is missing or not a string"),
        ("spicy", "chili", "inputs.spicy is missing or not a table"),
        ("fresh", "yes", "inputs.fresh is missing or not true or false"),
        ("main", None, "inputs.main is missing or not a table"),
    ],
)
def test_a_damaged_table_is_refused_naming_the_key(key: str, value: Any, shown: str) -> None:
    table = {k: v for k, v in RECIPE.items() if k != key}
    if value is not None:
        table[key] = value

    with pytest.raises(LockError) as caught:
        read_inputs(Recipe, Fields(table, "sandbox.lock: nodes.r.inputs"))

    assert shown in str(caught.value)
    assert "Run `sandbox lock` to rewrite the lock" in str(caught.value)


@dataclass(frozen=True, kw_only=True)
class Unreadable:
    sizes: tuple[int, ...]


def test_a_field_of_a_type_no_lock_table_holds_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match=r"Unreadable\.sizes"):
        read_inputs(Unreadable, Fields({"sizes": [1]}, "u"))
