"""Reading TOML documents with errors that name the file, the key, its line and the fix.

`tomllib` parses but forgets where a key was written; `Table` walks the parsed tree while
remembering each key's dotted path, and `line_of` finds that path's line in the source text so
an error can point at it. Used by `spec.py` (sandbox.toml) and `lockfile.py` (sandbox.lock).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from builder.core.errors import BuilderError

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def read_toml(path: Path, error: type[BuilderError]) -> tuple[dict[str, Any], str]:
    """Parse `path`, returning the document and its text; syntax errors become `error`."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        msg = f"{path}: file not found"
        raise error(msg) from None
    except OSError as exc:
        msg = f"{path}: cannot read it ({exc.strerror})"
        raise error(msg) from None
    if not raw.strip():
        msg = f"{path}: the file is empty; see `sandbox init` for a starter"
        raise error(msg)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        msg = f"{path}: not a UTF-8 text file (binary content?); TOML files are UTF-8 text"
        raise error(msg) from None
    if "\x00" in text:
        msg = f"{path}: contains NUL bytes (binary content?); TOML files are text"
        raise error(msg)
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        msg = f"{path}: invalid TOML: {exc}{_offending_line(text, str(exc))}. " + (
            "A key or table is set twice; keep one"
            if any(word in str(exc) for word in ("overwrite", "twice", "Duplicate"))
            else "Fix the syntax at that spot"
        )
        raise error(msg) from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively, with no depth limit.
        msg = f"{path}: invalid TOML: arrays or inline tables nested too deeply"
        raise error(msg) from None


def _offending_line(text: str, problem: str) -> str:
    """The source line a tomllib error points at, quoted, since tomllib does not name the key."""
    where = _AT_LINE.search(problem)
    lines = text.splitlines()
    if not where or not 0 < int(where.group(1)) <= len(lines):
        return ""
    line = lines[int(where.group(1)) - 1].strip()
    return f": `{line[:80]}`" if line else ""


def line_of(text: str, dotted: str) -> int | None:
    """Best-effort 1-based line of the key `dotted` (e.g. "tools.bin.kubectl.url") in `text`."""
    parts = dotted.split(".")
    table: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = [p.strip().strip('"') for p in header.group(1).split(".")]
            if table == parts:
                return number
            continue
        key = line.split("=", 1)[0].strip().strip('"') if "=" in line else ""
        if not key:
            continue
        full = table + [k.strip().strip('"') for k in key.split(".")]
        if full == parts[: len(full)] and len(full) >= min(len(parts), len(table) + 1):
            return number
    return None


@dataclass(frozen=True, kw_only=True)
class Source:
    """The file being read, for error messages."""

    path: Path
    text: str
    error: type[BuilderError]

    def fail(self, key: str, problem: str, fix: str) -> NoReturn:
        line = line_of(self.text, key) if key else None
        where = f"{self.path}:{line}" if line else str(self.path)
        what = f"`{key}`: {problem}" if key else problem
        msg = f"{where}: {what}." + (f" {fix}" if fix else "")
        raise self.error(msg)


@dataclass(frozen=True, kw_only=True)
class Table:
    """A TOML table with its dotted path, offering typed, error-reporting accessors."""

    data: dict[str, Any]
    path: str
    source: Source

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def check_keys(self, allowed: Iterable[str]) -> None:
        """Reject unknown keys, suggesting the snake_case or closest known spelling."""
        known = sorted(allowed)
        for name in self.data:
            if name in known:
                continue
            snake = _CAMEL.sub("_", name).lower().replace("-", "_")
            import difflib  # only to suggest a fix for a mistyped key

            close = difflib.get_close_matches(name, known, n=1)
            if snake in known:
                fix = f"Keys are snake_case: write `{snake}`"
            elif close:
                fix = f"Did you mean `{close[0]}`?"
            else:
                fix = f"Known keys here: {', '.join(known) or '(none)'}"
            self.source.fail(self.key(name), "unknown key", fix)

    def table(self, name: str, *, required: bool = False) -> Table | None:
        value = self.data.get(name)
        if value is None:
            if required:
                self.source.fail(self.key(name), "missing table", f"Add a [{self.key(name)}] table")
            return None
        if not isinstance(value, dict):
            self.source.fail(self.key(name), "must be a table", f"Write it as [{self.key(name)}]")
        return Table(data=value, path=self.key(name), source=self.source)

    def string(
        self,
        name: str,
        *,
        default: str | None = None,
        check: Callable[[str], str | None] | None = None,
    ) -> str:
        value = self.data.get(name, default)
        if value is None:
            self.source.fail(self.key(name), "missing", f'Add `{name} = "..."`')
        if not isinstance(value, str):
            self.source.fail(
                self.key(name), f"must be a string, not {_kind(value)}", 'Quote it: "..."'
            )
        self._validate(name, value, check)
        return value

    def optional_string(
        self, name: str, *, check: Callable[[str], str | None] | None = None
    ) -> str | None:
        return self.string(name, check=check) if name in self.data else None

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self.data.get(name, default)
        if not isinstance(value, bool):
            self.source.fail(
                self.key(name), f"must be true or false, not {_kind(value)}", "Use true or false"
            )
        return value

    def str_list(
        self, name: str, *, check: Callable[[str], str | None] | None = None, unique: bool = True
    ) -> tuple[str, ...]:
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.source.fail(
                self.key(name), "must be a list of strings", f'Write `{name} = ["a", "b"]`'
            )
        seen: set[str] = set()
        for item in value:
            self._validate(name, item, check)
            if unique and item in seen:
                self.source.fail(self.key(name), f"{item!r} is listed twice", "List it once")
            seen.add(item)
        return tuple(value)

    def str_map(
        self, name: str, *, check_key: Callable[[str], str | None] | None = None
    ) -> dict[str, str]:
        value = self.data.get(name, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            self.source.fail(
                self.key(name),
                "must be a table of strings",
                f'Write `{name} = {{ KEY = "value" }}`',
            )
        for item in value:
            self._validate(name, item, check_key)
        return dict(value)

    def _validate(self, name: str, value: str, check: Callable[[str], str | None] | None) -> None:
        problem = check(value) if check else None
        if problem:
            self.source.fail(self.key(name), f"{value!r} {problem}", "")


def _kind(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)
