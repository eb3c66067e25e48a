"""`sandbox ... --help` (builder/cli/app.py) shows every `[table]` name the source's help
strings and docstrings name, as written: a markup renderer once printed "push to .registry"
for "push to [image].registry"."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.core import TyperGroup

from builder.cli.app import app
from tests.unit.clirun import sandbox

_TABLE = re.compile(r"\[[a-z][a-z0-9_-]*(?:\.[a-z0-9_-]+)*\]")


# typer vendors click: its command class is reachable only as get_command's return type
Command = Any


def _commands(
    command: Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Command]]:
    yield path, command
    if isinstance(command, TyperGroup):
        for name, sub in sorted(command.commands.items()):
            yield from _commands(sub, (*path, name))


def _source_text(command: Command) -> str:
    """The help strings a command's source declares: its docstring and its options' help."""
    texts = [command.help or ""]
    texts += [getattr(param, "help", None) or "" for param in command.params]
    return "\n".join(texts)


_ALL = list(_commands(typer.main.get_command(app)))


def test_every_command_is_walked() -> None:
    names = {" ".join(path) for path, _ in _ALL}

    assert {"", "build", "publish", "lock", "overlay", "overlay apply", "overlay show"} <= names


def test_the_sources_name_tables() -> None:
    """The check below would pass vacuously if no help string named a table."""
    found = {name for _, command in _ALL for name in _TABLE.findall(_source_text(command))}

    assert "[image]" in "".join(found)


@pytest.mark.parametrize(("path", "command"), _ALL, ids=[" ".join(p) or "sandbox" for p, _ in _ALL])
def test_help_shows_each_table_name_literally(path: tuple[str, ...], command: Command) -> None:
    done = sandbox(*path, "--help")

    assert done.exit_code == 0, done.output
    shown = " ".join(done.stdout.split())  # click rewraps; a table name has no space
    for table in _TABLE.findall(_source_text(command)):
        assert table in shown, f"`sandbox {' '.join(path)} --help` lost {table}"


@pytest.mark.parametrize(("path", "command"), _ALL, ids=[" ".join(p) or "sandbox" for p, _ in _ALL])
def test_a_flag_shows_no_value_placeholder(path: tuple[str, ...], command: Command) -> None:
    done = sandbox(*path, "--help")

    assert "<bool>" not in done.stdout
    assert "\\[" not in done.stdout, "an escape meant for rich markup shows"
