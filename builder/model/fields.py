"""Reading a table of sandbox.lock by key and type, refusing a damaged one with a LockError.

`Fields(data, where)` wraps one table of a node's inputs; each getter returns the value typed
or raises naming the file, the node and the key, and saying to rewrite the lock. What the
typed inputs are read with (model/typed.py); nothing here knows what a key means.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from builder.core.errors import LockError

FIX = "Run `sandbox lock` to rewrite the lock"
E = TypeVar("E", bound=StrEnum)


class Fields:
    """One table of a lock's inputs, `where` naming it (`<file>: platforms.<p>.nodes.<n>`)."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self.data, self.where = data, where

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def refuse(self, key: str, what: str) -> LockError:
        return LockError(f"{self.where}.{key} is missing or not {what}. {FIX}")

    def _get(self, key: str, kind: type | tuple[type, ...], what: str) -> Any:
        value = self.data.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.refuse(key, what)
        return value

    def text(self, key: str) -> str:
        value: str = self._get(key, str, "a string")
        return value

    def integer(self, key: str) -> int:
        value: int = self._get(key, int, "an integer")
        return value

    def boolean(self, key: str) -> bool:
        value: bool = self._get(key, bool, "true or false")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        items = self._get(key, list, "a list of strings")
        if not all(isinstance(item, str) for item in items):
            raise self.refuse(key, "a list of strings")
        return tuple(items)

    def table(self, key: str) -> Fields:
        return Fields(self._get(key, dict, "a table"), f"{self.where}.{key}")

    def tables(self, key: str) -> list[Fields]:
        """An array of tables (the one-per-line inline tables of a list of pins)."""
        items = self._get(key, list, "a list of tables")
        if not all(isinstance(item, dict) for item in items):
            raise self.refuse(key, "a list of tables")
        return [Fields(item, f"{self.where}.{key}[{i}]") for i, item in enumerate(items)]

    def text_map(self, key: str) -> dict[str, str]:
        table = self._get(key, dict, "a table of strings")
        if not all(isinstance(value, str) for value in table.values()):
            raise self.refuse(key, "a table of strings")
        return dict(table)

    def document(self, key: str) -> dict[str, Any]:
        """A table whose shape is another tool's (Docker's image config): kept as it is."""
        value: dict[str, Any] = self._get(key, dict, "a table")
        return value

    def choice(self, key: str, enum: type[E]) -> E:
        """A string that must be one of `enum`'s values."""
        value = self.text(key)
        try:
            return enum(value)
        except ValueError:
            raise self.refuse(key, "one of " + ", ".join(e.value for e in enum)) from None
