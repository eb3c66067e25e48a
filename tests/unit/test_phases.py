"""`build --json` says where the build's time went besides the nodes (docs/build.md)."""

from __future__ import annotations

import json
from pathlib import Path

from builder.actions.build import BuildResult
from builder.actions.phases import Phases
from builder.image.loading import Loaded
from builder.realize.execute import BuildStatus, NodeOutcome
from builder.store.cache import Layer, NodeEntry

LAYER = Layer(diff_id="sha256:" + "1" * 64, size=7)


def _result(phases: Phases) -> BuildResult:
    entry = NodeEntry(name="system", key="sha256:" + "2" * 64, layers=(LAYER,), env={})
    node = NodeOutcome(
        name="system", key=entry.key, status=BuildStatus.BUILT, seconds=3.5, entry=entry
    )
    return BuildResult(
        image_id="sha256:" + "3" * 64,
        ref="sha256:" + "3" * 64,
        tags=["acme/img:333333333333", "acme/img:latest"],
        nodes=[node],
        overlay_path=Path("/cache/overlay.json"),
        phases=phases,
    )


def _phases() -> Phases:
    image = Loaded(engine_id="sha256:" + "3" * 64, layers=2, bytes=300, seconds=1.25)
    stages = [
        Loaded(engine_id="sha256:a", layers=1, bytes=100, seconds=0.5),
        Loaded(engine_id="sha256:b", layers=0, bytes=0, seconds=0.01),
    ]
    return Phases.of(nodes=4.004, assemble=0.123, image=image, stages=stages)


def test_build_json_has_the_phases_beside_the_nodes() -> None:
    out = json.loads(json.dumps(_result(_phases()).to_json()))
    assert out["phases"] == {
        "nodes": 4.0,
        "assemble": 0.12,
        "load": 1.25,
        "layers_loaded": 2,
        "bytes_loaded": 300,
        "stages": {"loads": 2, "seconds": 0.51, "bytes": 100},
    }
    assert [n["name"] for n in out["nodes"]] == ["system"], "the nodes are still listed"


def test_a_noop_replay_reports_nothing_loaded() -> None:
    again = _result(_phases()).as_noop(Path("/cache/overlay.json")).to_json()
    assert again["phases"]["load"] == 0.0
    assert again["phases"]["layers_loaded"] == again["phases"]["bytes_loaded"] == 0
