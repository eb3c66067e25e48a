"""The build's progress drawn in place on a terminal: one row per node, as uv and BuildKit do.

`Progress` (progress.py) prints plain lines, right for a CI log or a pipe. On a terminal a
build of a dozen nodes scrolls those away, so `sandbox build` there shows a live table
instead (rich, which typer already brings): one row per node with its state (queued, building,
built, pulled, cached, FAILED), its elapsed time (ticking while it builds), its layers' size
once known, and for a step that has gone quiet how long and where its log is (the heartbeat
the plain lines print every 30 s). Other messages print above the table; the summary table
after it is the plain one.

`progress_for(mode)` picks: `plain` the lines, `tty` the live table, `auto` the live table when
stderr is a terminal (and TERM is not "dumb"). rich honours NO_COLOR: the table is drawn
without colour, still in place. stdout is untouched, so `--json` is unchanged.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from builder.core.progress import HEARTBEAT, Progress, _Entry, _quiet, human_size

MODES = ("auto", "plain", "tty")
_STYLES = {
    "queued": "dim",
    "building": "yellow",
    "built": "green",
    "pulled": "cyan",
    "cached": "blue",
    "FAILED": "bold red",
}


@dataclass
class _Row:
    state: str
    detail: str = ""
    since: float = 0.0  # monotonic time the step began
    seconds: float | None = None  # once it ended
    size: str = ""
    logs: Sequence[Path] = ()
    began: float = 0.0  # wall time it began (what its log's mtime is compared with)

    @property
    def running(self) -> bool:
        return self.seconds is None and self.since > 0


class LiveProgress(Progress):
    """`Progress` as a table redrawn in place; use it as a context manager around the build
    (the terminal is given back on leaving, whatever ended the build)."""

    def __init__(self, stream: TextIO, *, heartbeat: float = HEARTBEAT) -> None:
        super().__init__(stream, heartbeat=heartbeat)
        # A terminal's (or, with `tty`, whatever stream's) console; rich reads NO_COLOR.
        console = Console(file=stream, force_terminal=True)
        self._console = console
        self._rows: dict[str, _Row] = {}
        self._rows_lock = threading.Lock()
        self._live = Live(
            get_renderable=self._table,
            console=console,
            refresh_per_second=4,
            transient=False,
            redirect_stdout=False,  # stdout is --json's
            redirect_stderr=True,  # another module's print to stderr goes above the table
        )

    def __enter__(self) -> Self:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()

    def say(self, text: str) -> None:
        self._console.print(Text(text), soft_wrap=True)  # above the table while it is live

    def queued(self, node: str, waits_for: list[str]) -> None:
        after = f"after {', '.join(waits_for)}" if waits_for else ""
        with self._rows_lock:
            self._rows[node] = _Row(state="queued", detail=after)

    def start(self, node: str, log: Path | None = None) -> None:
        with self._rows_lock:
            self._rows[node] = _Row(
                state="building",
                since=time.monotonic(),
                began=time.time(),
                logs=[log] if log is not None else [],
            )

    @contextmanager
    def watch(self, node: str, logs: Sequence[Path], *, verb: str = "resolving") -> Iterator[None]:
        """A row for a step announced elsewhere, while the block runs."""
        with self._rows_lock:
            before = self._rows.get(node)
            self._rows[node] = _Row(
                state=verb, since=time.monotonic(), began=time.time(), logs=list(logs)
            )
        try:
            yield
        finally:
            with self._rows_lock:
                if before is None:
                    self._rows.pop(node, None)
                else:
                    self._rows[node] = before

    def _tick(self) -> None:
        """No heartbeat lines: the table's times tick and its rows say a step is quiet."""

    def done(self, node: str, status: str, seconds: float, entry: _Entry) -> None:
        size = human_size(sum(layer.size for layer in entry.layers))
        with self._rows_lock:
            self._rows[node] = _Row(state=status, seconds=seconds, size=size)

    def failed(self, node: str, seconds: float) -> None:
        with self._rows_lock:
            self._rows[node] = _Row(state="FAILED", seconds=seconds)

    def _table(self) -> Table:
        now = time.monotonic()
        with self._rows_lock:
            rows = list(self._rows.items())
        table = Table(box=None, show_header=False, padding=(0, 1), pad_edge=True)
        # The state, node, time and size never shrink; a long note (a log path) folds.
        table.add_column(no_wrap=True, min_width=max(len(s) for s in _STYLES))
        table.add_column(no_wrap=True, min_width=max((len(n) for n, _ in rows), default=4))
        table.add_column(justify="right", no_wrap=True, min_width=6)
        table.add_column(justify="right", no_wrap=True, min_width=9)
        table.add_column(overflow="fold")
        for node, row in rows:
            if row.running:
                elapsed = f"{now - row.since:.0f}s"
                detail = _quiet(row.logs, row.began, self._heartbeat).strip() if row.logs else ""
            elif row.seconds is not None and row.state != "cached":
                elapsed, detail = f"{row.seconds:.1f}s", ""
            else:
                elapsed, detail = "", row.detail
            table.add_row(
                Text(row.state, style=_STYLES.get(row.state, "")),
                node,
                elapsed,
                row.size,
                Text(detail, style="dim"),
            )
        return table


def progress_for(mode: str, stream: TextIO | None = None) -> Progress:
    """The progress a build shows in `mode` (auto, plain, tty) on `stream` (stderr)."""
    out = stream or sys.stderr
    if mode == "plain" or (mode == "auto" and not _is_terminal(out)):
        return Progress(out)
    return LiveProgress(out)


def _is_terminal(stream: TextIO) -> bool:
    return stream.isatty() and os.environ.get("TERM") != "dumb"
