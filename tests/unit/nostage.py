"""What a host-assembled node's build must not ask for: its stage (the image of its parents)
or the engine. Tests hand these to a StepContext; a build that asks raises, and says which."""

from __future__ import annotations

from builder.engine.interface import Engine


class NeedsStage(Exception):
    """The build asked for its stage (the image of its parents)."""


class NeedsEngine(Exception):
    """The build asked for the engine, to run a container."""


def no_stage(name: str) -> str:
    raise NeedsStage(name)


def no_engine() -> Engine:
    raise NeedsEngine
