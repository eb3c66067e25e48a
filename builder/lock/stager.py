"""What lock is handed to build the nodes it runs its resolvers in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from builder.model.lockfile import NodeLock


class Stager(Protocol):
    """The image of locked `nodes`' `names` and all below them, stacked, built where the
    cache lacks them (`build.stage.Stages`; a fake in unit tests)."""

    def __call__(
        self, nodes: Mapping[str, NodeLock], names: Sequence[str], *, platform: str
    ) -> str: ...
