"""Tables of sandbox.toml that node kinds registered beyond the built-in ones read.

The built-in tables ([image], [base], [system], [runtimes], [tools], [deps], [sandbox]) are
read by `specfile`. A kind registered later (`builder.kinds.KINDS.register`) names its own
table (say `tools.gem`) and how to read it; `specfile` then accepts that table and keeps what
the reader returns in `Spec.declared`, by the table's name. The registry of the kinds fills
this one: model/ sits below the kinds, so it cannot ask them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from builder.core.tomlread import Table


class TableReader(Protocol):
    def __call__(self, table: Table, project: Path) -> Any:
        """The table read and checked (a SpecError naming file and key when it is wrong)."""
        ...


_READERS: dict[str, TableReader] = {}


def register(name: str, reader: TableReader) -> None:
    """Accept table `name` ("tools.gem": a dotted path) in sandbox.toml, read by `reader`."""
    _READERS[name] = reader


def unregister(name: str) -> None:
    _READERS.pop(name, None)


def readers() -> dict[str, TableReader]:
    """Every registered table, by name."""
    return dict(_READERS)
