"""The benchmark's results: medians of the samples, and the files written from them.

`results.json` holds what issue 7 asks for (`scenarios`: name, ours_s, docker_s,
ours_push_bytes, docker_push_bytes; `image_size`: ours, docker) plus `details` (every sample,
the registry's storage growth, lock times, whether the machine was quiet); `results.md` the
table with the ratios ours/docker against the goals; `chart.png` the same as bars.
`python -m bench.report DIR` writes results.md and chart.png again from DIR/results.json.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.png import PairRow, pair_chart

# Goals of issue 7 for ours/docker (medians, this machine).
TIME_GOALS = {"cold": 1.0, "noop": 1.5, "bump-npm-tool": 0.5, "bump-runtime": 0.5}
PUSH_GOAL = 0.5  # bytes a push uploads after a bump
SIZE_GOAL = 1.0
BUMPS = ("bump-npm-tool", "bump-runtime")
MB = 1_000_000


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One scenario in one repeat: both contenders built, then both pushed."""

    name: str
    repeat: int
    first: str  # which contender built first in this repeat (they alternate)
    ours_s: float
    docker_s: float
    ours_push_bytes: int  # sent to the registry (on the wire, through the counting proxy)
    docker_push_bytes: int
    ours_stored_bytes: int  # the registry's storage growth (blobs not there before)
    docker_stored_bytes: int
    ours_built: list[str]  # nodes `sandbox build` built (not cached)
    docker_steps_run: int  # Dockerfile steps not taken from Docker's cache
    ours_size: int
    docker_size: int
    suite_running: bool  # a pytest process was seen while this sample ran


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def summarize(samples: Sequence[Sample], names: Sequence[str]) -> dict[str, Any]:
    """The `scenarios` and `image_size` parts of results.json: medians over the repeats."""
    scenarios = []
    for name in names:
        mine = [s for s in samples if s.name == name]
        scenarios.append(
            {
                "name": name,
                "ours_s": round(_median([s.ours_s for s in mine]), 2),
                "docker_s": round(_median([s.docker_s for s in mine]), 2),
                "ours_push_bytes": round(_median([s.ours_push_bytes for s in mine])),
                "docker_push_bytes": round(_median([s.docker_push_bytes for s in mine])),
            }
        )
    cold = [s for s in samples if s.name == names[0]]
    return {
        "scenarios": scenarios,
        "image_size": {
            "ours": round(_median([s.ours_size for s in cold])),
            "docker": round(_median([s.docker_size for s in cold])),
        },
    }


def write(
    out: Path, samples: Sequence[Sample], names: Sequence[str], extra: Mapping[str, Any]
) -> dict[str, Any]:
    """Write results.json, results.md and chart.png into `out`; returns the summary."""
    summary = summarize(samples, names)
    stored = {
        name: {
            "ours": round(_median([s.ours_stored_bytes for s in samples if s.name == name])),
            "docker": round(_median([s.docker_stored_bytes for s in samples if s.name == name])),
        }
        for name in names
    }
    details = {**extra, "stored_bytes": stored, "samples": [asdict(s) for s in samples]}
    data = {**summary, "details": details}
    (out / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "results.md").write_text(markdown(summary, stored, extra) + per_repeat(samples))
    (out / "chart.png").write_bytes(chart(summary))
    return data


def _ratio(ours: float, docker: float) -> float | None:
    return ours / docker if docker else None


def _verdict(ratio: float | None, goal: float | None) -> str:
    if ratio is None:
        return "-"
    text = f"{ratio:.2f}"
    if goal is None:
        return text
    return f"{text} (goal <= {goal:g}: {'met' if ratio <= goal else '**missed**'})"


def markdown(
    summary: Mapping[str, Any], stored: Mapping[str, Any], extra: Mapping[str, Any]
) -> str:
    lines = [
        "| scenario | ours (s) | docker build (s) | ours/docker time | ours push (MB) "
        "| docker push (MB) | ours/docker push |",
        "| --- | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for s in summary["scenarios"]:
        name = s["name"]
        push_goal = PUSH_GOAL if name in BUMPS else None
        lines.append(
            f"| {name} | {s['ours_s']:.2f} | {s['docker_s']:.2f} "
            f"| {_verdict(_ratio(s['ours_s'], s['docker_s']), TIME_GOALS.get(name))} "
            f"| {s['ours_push_bytes'] / MB:.1f} | {s['docker_push_bytes'] / MB:.1f} "
            f"| {_verdict(_ratio(s['ours_push_bytes'], s['docker_push_bytes']), push_goal)} |"
        )
    size = summary["image_size"]
    lines += [
        "",
        "| image size | ours (MB) | docker build (MB) | ours/docker |",
        "| --- | ---: | ---: | --- |",
        f"| `docker image inspect -f {{{{.Size}}}}` | {size['ours'] / MB:.1f} "
        f"| {size['docker'] / MB:.1f} "
        f"| {_verdict(_ratio(size['ours'], size['docker']), SIZE_GOAL)} |",
        "",
        "Push MB are bytes sent to the registry (counted on the wire); the registry's storage "
        "grew by (MB, ours / docker): "
        + ", ".join(
            f"{name} {v['ours'] / MB:.1f} / {v['docker'] / MB:.1f}" for name, v in stored.items()
        )
        + ".",
        "",
        f"Measured: sandbox-builder {extra.get('builder', '?')}, Docker Engine "
        f"{extra.get('docker', '?')} (classic builder), {extra.get('cpus', '?')} CPUs. "
        f"Medians of {extra.get('repeat', '?')} repeats; quiet machine (no pytest running at "
        f"any sample): {'yes' if extra.get('quiet') else 'no'}.",
    ]
    return "\n".join(lines) + "\n"


def per_repeat(samples: Sequence[Sample]) -> str:
    """Every sample: who went first, both times, what rebuilt, and whether pytest ran."""
    lines = [
        "",
        "Every sample (`built`: nodes `sandbox build` built; `steps`: Dockerfile steps not "
        "taken from Docker's cache):",
        "",
        "| repeat | scenario | first | ours (s) | docker (s) | ours/docker | built | steps "
        "| pytest running |",
        "| ---: | --- | --- | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for s in samples:
        ratio = _ratio(s.ours_s, s.docker_s)
        lines.append(
            f"| {s.repeat + 1} | {s.name} | {s.first} | {s.ours_s:.2f} | {s.docker_s:.2f} "
            f"| {ratio or 0:.2f} | {', '.join(s.ours_built) or '-'} | {s.docker_steps_run} "
            f"| {'yes' if s.suite_running else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def chart(summary: Mapping[str, Any]) -> bytes:
    rows = [
        PairRow(
            label=f"{s['name']} (s)",
            ours=s["ours_s"],
            docker=s["docker_s"],
            unit="s",
            goal=TIME_GOALS.get(s["name"]),
        )
        for s in summary["scenarios"]
    ]
    rows += [
        PairRow(
            label=f"push {s['name'].removeprefix('bump-')}",
            ours=s["ours_push_bytes"] / MB,
            docker=s["docker_push_bytes"] / MB,
            unit="MB",
            goal=PUSH_GOAL,
        )
        for s in summary["scenarios"]
        if s["name"] in BUMPS
    ]
    size = summary["image_size"]
    rows.append(
        PairRow(
            label="image size",
            ours=size["ours"] / MB,
            docker=size["docker"] / MB,
            unit="MB",
            goal=SIZE_GOAL,
        )
    )
    return pair_chart(
        "sandbox build vs docker build (medians)", rows, names=("sandbox build", "docker build")
    )


def rerender(out: Path) -> None:
    """Write results.md and chart.png again from `out/results.json` (no measuring)."""
    data = json.loads((out / "results.json").read_text())
    details = data["details"]
    samples = [Sample(**s) for s in details["samples"]]
    extra = {k: v for k, v in details.items() if k not in ("samples", "stored_bytes")}
    names = [s["name"] for s in data["scenarios"]]
    write(out, samples, names, extra)


if __name__ == "__main__":  # python -m bench.report DIR
    import sys

    rerender(Path(sys.argv[1]))
