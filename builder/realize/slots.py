"""The job slots of a build: at most `jobs` nodes work at once, and a node waiting for its
parents' layers gives its slot back while it waits.

A node whose kind needs no stage (`Kind.needs_stage`) starts before its parents are built;
should it turn out to need them (a tree only its tarballs show needs a container), its wait
must not hold a slot a parent needs to build, or `--jobs 1` would wait forever.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from builder.core.errors import BuildError


class Slots:
    """`jobs` slots shared by a build's threads, and which nodes are done."""

    def __init__(self, jobs: int, *, done: Iterable[str] = ()) -> None:
        self._free = threading.Semaphore(max(1, jobs))
        self._done = set(done)
        self._stopped = False
        self._changed = threading.Condition()
        self._held = threading.local()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot for the block, waiting for one to be free."""
        self._free.acquire()
        self._held.value = True
        try:
            yield
        finally:
            self._held.value = False
            self._free.release()

    def finished(self, name: str) -> None:
        """Node `name` is built (or cached): its layers may be stacked."""
        with self._changed:
            self._done.add(name)
            self._changed.notify_all()

    def stop(self) -> None:
        """The build failed: whoever waits for a node stops waiting."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def wait_for(self, names: Iterable[str], *, by: str) -> None:
        """Return once every node of `names` is done, this thread's slot given back while it
        waits; a BuildError naming `by` when the build stops first."""
        wanted = set(names)
        with self._changed:
            if wanted <= self._done:
                return
        held = getattr(self._held, "value", False)
        if held:
            self._free.release()
        try:
            with self._changed:
                self._changed.wait_for(lambda: wanted <= self._done or self._stopped)
                if not wanted <= self._done:
                    missing = ", ".join(sorted(wanted - self._done))
                    msg = f"{by}: not built, the build stopped before {missing} was"
                    raise BuildError(msg)
        finally:
            if held:
                self._free.acquire()
