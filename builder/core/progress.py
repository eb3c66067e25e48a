"""What a person watching a build sees: one line per node on stderr.

stdout stays free for `--json`. Lines are plain text (no cursor tricks), so they read the same
in a terminal, a CI log and a pipe: a node is queued, then building, then built, pulled or
cached; a long step says every HEARTBEAT seconds that it is still running, with its time,
and, when its log has not grown for that long, how long it has been quiet and where the log
is (a stalled mirror looks like that; limits.py bounds how long it may last). `sandbox
lock`'s steps (apt resolving the system closure, pip and npm resolving tools) get the same
heartbeat through `watch`, as `resolving`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, Self, TextIO


# What the lines show of a node, as the store and the executor give it (store.cache.NodeEntry,
# build.execute.NodeOutcome): read-only views, so this base module needs neither.
class _Layer(Protocol):
    @property
    def diff_id(self) -> str: ...
    @property
    def size(self) -> int: ...


class _Entry(Protocol):
    @property
    def layers(self) -> Sequence[_Layer]: ...


class _Outcome(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def seconds(self) -> float: ...
    @property
    def entry(self) -> _Entry: ...


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


HEARTBEAT = 30.0


class Progress:
    def __init__(
        self, stream: TextIO | None = None, *, quiet: bool = False, heartbeat: float = HEARTBEAT
    ) -> None:
        self._out = stream or sys.stderr
        self._quiet = quiet
        self._lock = threading.Lock()
        self._started: dict[str, tuple[float, str]] = {}  # node -> when it began, its verb
        # node -> the logs its step writes, wall time it began
        self._logs: dict[str, tuple[Sequence[Path], float]] = {}
        self._heartbeat = heartbeat
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> Self:
        """Around a build: nothing to set up for lines (liveprogress.py draws a table)."""
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def say(self, text: str) -> None:
        if not self._quiet:
            with self._lock:
                print(text, file=self._out, flush=True)

    def queued(self, node: str, waits_for: list[str]) -> None:
        after = f" (after {', '.join(waits_for)})" if waits_for else ""
        self.say(f"  queued    {node}{after}")

    def start(self, node: str, log: Path | None = None) -> None:
        self._begin(node, [log] if log is not None else [], "building")
        self.say(f"  building  {node} ...")

    @contextmanager
    def watch(self, node: str, logs: Sequence[Path], *, verb: str = "resolving") -> Iterator[None]:
        """The heartbeat for a step announced elsewhere (a lock step), while the block runs;
        its quiet time is that of the newest of `logs` (a step writing several in turn)."""
        self._begin(node, logs, verb)
        try:
            yield
        finally:
            with self._lock:
                self._started.pop(node, None)
                self._logs.pop(node, None)

    def _begin(self, node: str, logs: Sequence[Path], verb: str) -> None:
        with self._lock:
            self._started[node] = (time.monotonic(), verb)
            if logs:
                self._logs[node] = (logs, time.time())
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, daemon=True)
                self._ticker.start()

    def _tick(self) -> None:
        """Say which nodes are still building, every `heartbeat` seconds, while any is."""
        while True:
            time.sleep(self._heartbeat)
            now = time.monotonic()
            with self._lock:
                running = sorted(self._started.items(), key=lambda item: item[1])
                logs = dict(self._logs)
            for node, (since, verb) in running:
                quiet = _quiet(*logs[node], self._heartbeat) if node in logs else ""
                self.say(f"  {verb:<9} {node:<24} {now - since:6.0f}s ...{quiet}")

    def done(self, node: str, status: str, seconds: float, entry: _Entry) -> None:
        with self._lock:
            self._started.pop(node, None)
            self._logs.pop(node, None)
        size = human_size(sum(layer.size for layer in entry.layers))
        layer = entry.layers[-1].diff_id[:19] if entry.layers else "-"
        timing = f"{seconds:6.1f}s" if status != "cached" else "       "
        self.say(f"  {status:<8}  {node:<24} {timing}  {size:>9}  {layer}")

    def failed(self, node: str, seconds: float) -> None:
        with self._lock:
            self._started.pop(node, None)
            self._logs.pop(node, None)
        self.say(f"  FAILED    {node:<24} {seconds:6.1f}s")

    def summary(self, nodes: Sequence[_Outcome], seconds: float) -> None:
        """A table of every node: what happened, how long it took, how big its layers are."""
        self.say(f"{summary_table(nodes)} in {seconds:.1f}s")


def _quiet(logs: Sequence[Path], began: float, after: float) -> str:
    """` no output for 95s (log: PATH)` when the step's log (the newest of `logs`) has not
    grown for `after` s; nothing when the step writes no log this time (a host step) or
    printed lately."""
    found = []
    for path in logs:
        try:
            found.append((path.stat().st_mtime, path))
        except OSError:
            continue
    if not found:
        return ""
    changed, log = max(found)
    if changed < began - 1:  # last build's log: this step has not started writing one
        return ""
    quiet = time.time() - changed
    return f" no output for {quiet:.0f}s (log: {log})" if quiet >= after else ""


def summary_table(nodes: Sequence[_Outcome]) -> str:
    """The summary of a build but its total time: a line per node, then the counts."""
    width = max((len(n.name) for n in nodes), default=4)
    lines = [f"  {'node':<{width}}  {'status':<7}  {'time':>7}  {'size':>9}"]
    for n in nodes:
        size = human_size(sum(layer.size for layer in n.entry.layers))
        timing = f"{n.seconds:6.1f}s" if n.status != "cached" else "      -"
        lines.append(f"  {n.name:<{width}}  {n.status:<7}  {timing:>7}  {size:>9}")
    counts = {s: sum(1 for n in nodes if n.status == s) for s in ("built", "pulled", "cached")}
    done = ", ".join(f"{c} {s}" for s, c in counts.items() if c)
    lines.append(f"{len(nodes)} nodes ({done})")
    return "\n".join(lines)
