"""Which engine this process talks to: the one place that chooses it.

Every caller gets its engine here: `open_engine` connects now, `EngineFactory` on first
need, so commands that never run a step (graph, status, `lock --check`) neither connect nor
import the Docker SDK. The engine is the one the Docker CLI would reach (DOCKER_HOST, a
context: endpoint.py), spoken to through the Docker Engine API (`docker.DockerEngine`),
which Docker 20.10 and later, its containerd image store and a remote daemon over ssh:// or
tcp:// all answer.
"""

from __future__ import annotations

import threading

from builder.engine.interface import Engine


def open_engine() -> Engine:
    """The engine, connected: an EngineUnavailableError (exit 9) when it does not answer."""
    from builder.engine.docker import DockerEngine

    return DockerEngine()


class EngineFactory:
    """`open_engine` on the first call, the same engine on every later one (from any thread)."""

    def __init__(self) -> None:
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = open_engine()
            return self._engine
