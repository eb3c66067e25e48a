"""Where a build's time went besides the nodes: assembling the image and loading it.

Once nodes are cached or laid out on the host in a fraction of a second, what is left of
`sandbox build` is the engine registering layers (`docker load` extracts every layer tar it
is sent, and every layer above a changed one sits on a new chain, so it is sent again).
`build --json` reports these figures as `phases` (docs/build.md) and the benchmark puts them
in its "where our time goes" table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from builder.image.loading import Loaded


@dataclass(frozen=True, kw_only=True)
class Phases:
    """Seconds of each phase of one build, and what its loads sent to the engine."""

    nodes: float = 0.0  # every node cached, pulled or built (build environments loaded too)
    assemble: float = 0.0  # the image's config, SBOM and profile layer from the built nodes
    load: float = 0.0  # the image into the engine: only its layers the engine lacks
    layers_loaded: int = 0  # layer tars the image's load sent (each one registered)
    bytes_loaded: int = 0
    stage_loads: int = 0  # build environments (stages) loaded while nodes built
    stage_load: float = 0.0  # their seconds, within `nodes`
    stage_bytes: int = 0

    @classmethod
    def of(
        cls, *, nodes: float, assemble: float, image: Loaded, stages: Sequence[Loaded]
    ) -> Phases:
        return cls(
            nodes=round(nodes, 2),
            assemble=round(assemble, 2),
            load=image.seconds,
            layers_loaded=image.layers,
            bytes_loaded=image.bytes,
            stage_loads=len(stages),
            stage_load=round(sum(s.seconds for s in stages), 2),
            stage_bytes=sum(s.bytes for s in stages),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes,
            "assemble": self.assemble,
            "load": self.load,
            "layers_loaded": self.layers_loaded,
            "bytes_loaded": self.bytes_loaded,
            "stages": {
                "loads": self.stage_loads,
                "seconds": self.stage_load,
                "bytes": self.stage_bytes,
            },
        }
