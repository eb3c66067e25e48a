"""Reading a lock table into a frozen dataclass and writing it back, driven by its fields.

`read_inputs(cls, fields)` reads one table of sandbox.lock into `cls`; `write_inputs(obj)`
gives back the very same dict, so that a node's key (which hashes the dict) and the lock's
bytes depend on the table alone, never on the class. Each field is the lock key of its name,
read by its annotation:

- `str`, `int`, `bool`, a `StrEnum` (its value), `tuple[str, ...]`
- a dataclass (a table), `tuple[Dataclass, ...]` (an array of tables, in order)
- `Mapping[str, str]`, `Mapping[str, Dataclass]` (a table of tables), `Mapping[str, Any]`
  (a table of another tool's shape, kept as it is)
- `X | None = None`: absent when None

A field with a default is absent from the table when it holds its default, and takes it when
the key is absent (`docs: bool = False` is written only when true). The irregular cases are
metadata: `field(metadata=key_from("manager"))` reads the field under the key that another
(earlier, required) field's value spells; `field(metadata=REST)` holds every key the other
fields do not read, written back in the field's place. A base class whose table is one of
several subclasses declares `variants: ClassVar[Variants]`, which picks the subclass by
whether a key is present.

A damaged table is refused by `Fields`, naming file, node and key.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields, is_dataclass
from enum import Enum, StrEnum
from typing import Any, TypeGuard, TypeVar, Union, get_args, get_origin, get_type_hints

from builder.model.fields import Fields

Inputs = dict[str, Any]  # a node's inputs as sandbox.lock writes them (and keys hash them)
T = TypeVar("T")
Reader = Callable[[Fields, str], Any]

_KEY_FROM, _REST = "lock_key_from", "lock_rest"
REST: Mapping[str, bool] = {_REST: True}  # field metadata: the keys no other field reads


def key_from(name: str) -> Mapping[str, str]:
    """Field metadata: the field's lock key is the value of field `name` (declared before it)."""
    return {_KEY_FROM: name}


@dataclass(frozen=True, kw_only=True)
class Variants:
    """The subclasses a base class's table may be: `present` if it has `key`, else `absent`."""

    key: str
    present: type[Any]
    absent: type[Any]


@dataclass(frozen=True, kw_only=True)
class _Slot:
    """One field of a dataclass, as the lock holds it."""

    name: str
    key_from: str | None  # the field whose value is this one's key, if not `name`
    rest: bool
    read: Reader
    default: Any  # MISSING for a field the table must have

    def key(self, value_of: Callable[[str], Any]) -> str:
        if self.key_from is None:
            return self.name
        key: str = _written(value_of(self.key_from))
        return key


def read_inputs(cls: type[T], f: Fields) -> T:
    """The table `f` read into `cls` (or the variant of it the table is); a LockError naming
    the key if a key is missing or of the wrong type."""
    chosen = cls.__dict__.get("variants")
    if isinstance(chosen, Variants):
        cls = chosen.present if chosen.key in f else chosen.absent
    values: dict[str, Any] = {}
    read: set[str] = set()
    rest = None
    for slot in _slots(cls):
        if slot.rest:
            rest = slot.name
            continue
        key = slot.key(values.__getitem__)
        read.add(key)
        if key in f or slot.default is MISSING:
            values[slot.name] = slot.read(f, key)
    if rest is not None:
        values[rest] = {k: v for k, v in f.data.items() if k not in read}
    return cls(**values)


def write_inputs(obj: Any) -> Inputs:
    """The table `obj` was read from: the same keys and values, fields in declared order."""
    found: Inputs = {}
    for slot in _slots(type(obj)):
        value = getattr(obj, slot.name)
        if slot.default is not MISSING and value == slot.default:
            continue
        if slot.rest:
            found.update(_written(value))
        else:
            found[slot.key(lambda name: getattr(obj, name))] = _written(value)
    return found


def _written(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return write_inputs(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_written(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _written(item) for key, item in value.items()}
    return value


def _slots(cls: type[Any]) -> tuple[_Slot, ...]:
    """`cls`'s fields in declared order (worked out once a class)."""
    if cls not in _SLOTS:
        _SLOTS[cls] = _slots_of(cls)
    return _SLOTS[cls]


_SLOTS: dict[type[Any], tuple[_Slot, ...]] = {}


def _slots_of(cls: type[Any]) -> tuple[_Slot, ...]:
    hints = get_type_hints(cls)
    return tuple(
        _Slot(
            name=field.name,
            key_from=field.metadata.get(_KEY_FROM),
            rest=field.metadata.get(_REST, False),
            read=_reader(hints[field.name], f"{cls.__name__}.{field.name}"),
            default=field.default,
        )
        for field in fields(cls)
    )


def _reader(hint: Any, where: str) -> Reader:
    """How a field annotated `hint` is read from a table (`where` names it if it cannot be)."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        return _reader(next(arg for arg in args if arg is not type(None)), where)
    if hint is str:
        return Fields.text
    if hint is int:
        return Fields.integer
    if hint is bool:
        return Fields.boolean
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return lambda f, key: f.choice(key, hint)
    if _is_dataclass_type(hint):
        return lambda f, key: read_inputs(hint, f.table(key))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = args[0]
        if item is str:
            return Fields.texts
        if _is_dataclass_type(item):
            return lambda f, key: tuple(read_inputs(item, table) for table in f.tables(key))
    if origin is Mapping and args[:1] == (str,):
        value = args[1]
        if value is Any:
            return Fields.document
        if value is str:
            return Fields.text_map
        if _is_dataclass_type(value):
            return lambda f, key: _table_of_tables(value, f.table(key))
    msg = f"{where}: read_inputs cannot read a field annotated {hint}"
    raise TypeError(msg)


def _is_dataclass_type(hint: Any) -> TypeGuard[type[Any]]:
    return isinstance(hint, type) and is_dataclass(hint)


def _table_of_tables(cls: type[T], table: Fields) -> dict[str, T]:
    return {name: read_inputs(cls, table.table(name)) for name in table.data}
