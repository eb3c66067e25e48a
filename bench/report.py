"""The benchmark's results: medians of the samples, and the files written from them.

`results.json` holds `scenarios` (per scenario, for each contender `<who>_s`, and but for
teammate `<who>_push_bytes` and `<who>_size`; a contender that did not run a scenario, such
as buildx in teammate, has no keys there; teammate adds `floor_s`, the faster `docker
pull` of the finished image, and each pull; and `ours_load_s`, the engine's load of our
image, from `build --json`'s phases), `image_size` (after cold), `profile` (where our time
went: each node's status and seconds, and the build's phases, from the median sample) and
`details` (every sample, the registry's storage growth, lock times, load and quiet flags).
`results.md` has the tables with the ratios against both peers and the goals (ours /
BuildKit), `chart.png` one panel per scenario (matplotlib, the `bench` extra).
`python -m bench.report DIR` writes results.md and chart.png again from DIR/results.json.
bench/multiplatform.py adds `multiplatform` to results.json (each platform's cold build and
its nodes, medians) and its section to results.md; rewriting either keeps them.
"""

from __future__ import annotations

import io
import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CONTENDERS = ("ours", "docker", "buildkit", "buildx")
PEERS = CONTENDERS[1:]
EXPERTS = ("buildkit", "buildx")  # the goals are ours / each of them
LABELS = {
    "ours": "sandbox build",
    "docker": "classic builder",
    "buildkit": "BuildKit 20.10 (expert)",
    "buildx": "buildx 0.29 (expert, --link)",
}
SHORT = {"ours": "ours", "docker": "classic", "buildkit": "BuildKit 20.10", "buildx": "buildx"}
COLORS = {"ours": "#2e8b57", "docker": "#999999", "buildkit": "#3465a4", "buildx": "#75507b"}
# Goals of issue 29 for ours / BuildKit-expert (medians, the same run); no-op and teammate
# are issue 21's, kept.
TIME_GOALS = {"cold": 0.8, "noop": 1.0, "bump-npm-tool": 0.5, "bump-runtime": 0.4}
PUSH_GOALS = {"bump-runtime": 0.25}  # bytes a push uploads after the bump
SIZE_GOAL = 0.9
TEAMMATE_GOAL = 1.2  # ours / the `docker pull` floor
BUMPS = ("bump-npm-tool", "bump-runtime")
MB = 1_000_000
MULTIPLATFORM_HEADING = "## Several platforms: a cold build of each, here"


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One scenario in one repeat: the contenders built, then (but for teammate) pushed."""

    name: str
    repeat: int
    order: list[str]  # who built first, second, ... (rotates every repeat)
    seconds: dict[str, float]
    push_bytes: dict[str, int]  # sent to the registry (on the wire, through the counting proxy)
    stored_bytes: dict[str, int]  # the registry's storage growth (blobs not there before)
    size: dict[str, int]  # `docker image inspect -f {{.Size}}`
    steps_run: dict[str, int]  # docker, buildkit, buildx: Dockerfile steps not cached
    ours_nodes: dict[str, list[Any]]  # node -> [status, seconds] from `sandbox build --json`
    # `sandbox build --json`'s phases: nodes, assemble, load (the engine's), layers_loaded, ...
    ours_phases: dict[str, Any] = field(default_factory=dict)
    pull_s: dict[str, float] = field(default_factory=dict)  # teammate: `docker pull` of each
    suite_running: bool  # a pytest process was seen while this sample ran
    load_avg: float = 0.0  # the highest 1-minute load average seen around the sample


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def _median_sample(mine: Sequence[Sample]) -> Sample:
    ranked = sorted(mine, key=lambda s: s.seconds["ours"])
    return ranked[(len(ranked) - 1) // 2]


def ran(samples: Sequence[Sample]) -> list[str]:
    """The contenders every one of `samples` has a time for, in CONTENDERS' order."""
    return [who for who in CONTENDERS if samples and all(who in s.seconds for s in samples)]


def summarize(samples: Sequence[Sample], names: Sequence[str]) -> dict[str, Any]:
    """The `scenarios`, `image_size` and `profile` parts of results.json: medians."""
    scenarios = []
    profile = {}
    for name in names:
        mine = [s for s in samples if s.name == name]
        row: dict[str, Any] = {"name": name}
        who_ran = ran(mine)
        for who in who_ran:
            row[f"{who}_s"] = round(_median([s.seconds[who] for s in mine]), 2)
        if name == "teammate":
            pulled = [who for who in CONTENDERS if all(who in s.pull_s for s in mine)]
            for who in pulled:
                row[f"pull_{who}_s"] = round(_median([s.pull_s[who] for s in mine]), 2)
            row["floor_s"] = min(row[f"pull_{who}_s"] for who in pulled)
        else:
            for who in who_ran:
                row[f"{who}_push_bytes"] = round(_median([s.push_bytes[who] for s in mine]))
        for who in who_ran:
            row[f"{who}_size"] = round(_median([s.size[who] for s in mine]))
        loads = [float(s.ours_phases["load"]) for s in mine if "load" in s.ours_phases]
        if loads:
            row["ours_load_s"] = round(_median(loads), 2)  # `docker load` of our image
        scenarios.append(row)
        median = _median_sample(mine)
        profile[name] = {
            "repeat": median.repeat + 1,
            "ours_s": median.seconds["ours"],
            "nodes": median.ours_nodes,
            "phases": median.ours_phases,
        }
    cold = next(row for row in scenarios if row["name"] == "cold")
    return {
        "scenarios": scenarios,
        "image_size": {who: cold[f"{who}_size"] for who in CONTENDERS if f"{who}_size" in cold},
        "profile": profile,
    }


def write(
    out: Path, samples: Sequence[Sample], names: Sequence[str], extra: Mapping[str, Any]
) -> dict[str, Any]:
    """Write results.json, results.md and chart.png into `out`; returns the summary."""
    summary = summarize(samples, names)
    extra = {**extra, "repeats_done": len({s.repeat for s in samples})}
    stored = {
        name: {
            who: round(_median([s.stored_bytes[who] for s in samples if s.name == name]))
            for who in ran([s for s in samples if s.name == name])
        }
        for name in names
        if name != "teammate"
    }
    details = {**extra, "stored_bytes": stored, "samples": [asdict(s) for s in samples]}
    data = {**summary, "details": details, **_multiplatform(out)}
    (out / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "results.md").write_text(
        markdown(summary, stored, extra)
        + profile_md(summary)
        + per_repeat(samples)
        + multiplatform_md(data.get("multiplatform"))
    )
    (out / "chart.png").write_bytes(chart(summary, extra))
    return data


def _multiplatform(out: Path) -> dict[str, Any]:
    """What bench/multiplatform.py left in out/results.json, if anything."""
    try:
        old = json.loads((out / "results.json").read_text())
    except (OSError, ValueError):
        return {}
    return {"multiplatform": old["multiplatform"]} if "multiplatform" in old else {}


def write_multiplatform(out: Path, multiplatform: Mapping[str, Any]) -> None:
    """Put bench/multiplatform.py's results into out/results.json and out/results.md."""
    path = out / "results.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data["multiplatform"] = dict(multiplatform)
    path.write_text(json.dumps(data, indent=2) + "\n")
    md = out / "results.md"
    text = md.read_text() if md.exists() else ""
    kept = text.split("\n" + MULTIPLATFORM_HEADING, 1)[0].rstrip("\n")
    md.write_text((kept + "\n" if kept else "") + multiplatform_md(multiplatform))


def multiplatform_md(multiplatform: Mapping[str, Any] | None) -> str:
    """The table of each platform's cold build, node by node: native first, then emulated."""
    if not multiplatform:
        return ""
    platforms = multiplatform["platforms"]
    names = list(next(iter(platforms.values()))["nodes"])
    header = " | ".join(
        f"{p} ({'emulated' if p != multiplatform.get('host', 'linux/amd64') else 'native'}, s)"
        for p in platforms
    )
    lines = [
        "",
        MULTIPLATFORM_HEADING,
        "",
        f"| node | {header} | ratio |",
        "| --- | " + "---: | " * len(platforms) + "---: |",
    ]
    rows = [(n, [platforms[p]["nodes"].get(n, 0.0) for p in platforms]) for n in names]
    rows.append(("whole build", [platforms[p]["seconds"] for p in platforms]))
    for name, seconds in rows:
        ratio = _ratio(seconds[-1], seconds[0])
        cells = " | ".join(f"{s:.1f}" for s in seconds)
        lines.append(f"| {name} | {cells} | {f'{ratio:.1f}x' if ratio else '-'} |")
    low, high = multiplatform.get("load_avg", [0, 0])
    lines += [
        "",
        f"Cold: empty cache dir and store (the debootstrapped base too), downloads kept. "
        f"sandbox-builder {multiplatform.get('builder', '?')}, {multiplatform.get('cpus', '?')} "
        f"CPUs, medians of {multiplatform.get('repeat', '?')} repeat(s), 1-minute load "
        f"average {low}-{high}; emulator {multiplatform.get('emulator', '?')}; lock of both "
        f"platforms {multiplatform.get('lock_s', '?')} s.",
        "",
    ]
    return "\n".join(lines)


def _ratio(ours: float, peer: float) -> float | None:
    return ours / peer if peer else None


def _verdict(ratio: float | None, goal: float | None) -> str:
    if ratio is None:
        return "-"
    text = f"{ratio:.2f}"
    if goal is None:
        return text
    return f"{text} (goal <= {goal:g}: {'met' if ratio <= goal else '**missed**'})"


def conditions(extra: Mapping[str, Any]) -> str:
    """One sentence: what was measured, how often, and how busy the machine was."""
    low, high = extra.get("load_avg", [0, 0])
    loaded = high > 3
    buildx = extra.get("buildx")
    repeats = f"{extra.get('repeat', '?')} repeat(s)"
    if extra.get("repeats_done", extra.get("repeat")) != extra.get("repeat"):
        done = extra["repeats_done"]
        repeats = f"the samples of the {done} repeat(s) begun ({repeats} asked)"
    return (
        f"Measured: sandbox-builder {extra.get('builder', '?')}, Docker Engine "
        f"{extra.get('docker', '?')} (classic builder and its built-in BuildKit)"
        + (f", {buildx}" if buildx else "")
        + f", {extra.get('cpus', '?')} CPUs. Medians of {repeats}; 1-minute load "
        f"average during the samples {low}-{high}"
        + (" (**a loaded machine**: other builds ran beside it)" if loaded else "")
        + f"; quiet machine (no pytest running at any sample): "
        f"{'yes' if extra.get('quiet') else 'no'}. Whole run {extra.get('run_s', '?')} s "
        f"(set-up {extra.get('setup_s', '?')} s)."
        + (f" **Incomplete run**: {extra['incomplete']}." if extra.get("incomplete") else "")
    )


def _cell(row: Mapping[str, Any], key: str, scale: float = 1.0, digits: int = 2) -> str:
    return f"{row[key] / scale:.{digits}f}" if key in row else "-"


def _goals(row: Mapping[str, Any], ours: str, goal: float | None, suffix: str = "") -> str:
    """`ours/<expert> ratio (goal: met|missed)` against each BuildKit-expert that ran."""
    parts = [
        f"ours/{SHORT[who]} {_verdict(_ratio(row[ours], row[key]), goal)}"
        for who in EXPERTS
        if (key := f"{who}{suffix}") in row
    ]
    return "; ".join(parts) or "-"


def markdown(
    summary: Mapping[str, Any], stored: Mapping[str, Any], extra: Mapping[str, Any]
) -> str:
    scenarios = summary["scenarios"]
    peers = [who for who in PEERS if any(f"{who}_s" in s for s in scenarios)]
    heads = " | ".join(f"{SHORT[who]} (s)" for who in peers)
    ratios = " | ".join(f"ours/{SHORT[who]}" for who in peers)
    lines = [
        f"| scenario | ours (s) | {heads} | {ratios} | goal |",
        "| --- | ---: |" + " ---: |" * (2 * len(peers)) + " --- |",
    ]
    for s in scenarios:
        name = s["name"]
        if name == "teammate":
            goal = "ours/floor " + _verdict(_ratio(s["ours_s"], s["floor_s"]), TEAMMATE_GOAL)
            goal += f"; floor {s['floor_s']:.2f} s"
        else:
            goal = _goals(s, "ours_s", TIME_GOALS.get(name), "_s")
        times = " | ".join(_cell(s, f"{who}_s") for who in peers)
        versus = " | ".join(
            _verdict(_ratio(s["ours_s"], s[f"{who}_s"]), None) if f"{who}_s" in s else "-"
            for who in peers
        )
        lines.append(f"| {name} | {s['ours_s']:.2f} | {times} | {versus} | {goal} |")
    heads = " | ".join(f"{SHORT[who]} (MB)" for who in peers)
    lines += [
        "",
        f"| push after | ours (MB) | {heads} | {ratios} |",
        "| --- | ---: |" + " ---: |" * len(peers) + " --- |" * len(peers),
    ]
    for s in scenarios:
        if s["name"] == "teammate":
            continue
        push_goal = PUSH_GOALS.get(s["name"])
        ours = s["ours_push_bytes"]
        sent = " | ".join(_cell(s, f"{who}_push_bytes", MB, 1) for who in peers)
        versus = " | ".join(
            _verdict(_ratio(ours, s[key]), push_goal if who in EXPERTS else None)
            if (key := f"{who}_push_bytes") in s
            else "-"
            for who in peers
        )
        lines.append(f"| {s['name']} | {ours / MB:.1f} | {sent} | {versus} |")
    size = summary["image_size"]
    lines += [
        "",
        f"| image size (after cold) | ours (MB) | {heads} | {ratios} |",
        "| --- | ---: |" + " ---: |" * len(peers) + " --- |" * len(peers),
        f"| `docker image inspect -f {{{{.Size}}}}` | {size['ours'] / MB:.1f} | "
        + " | ".join(_cell(size, who, MB, 1) for who in peers)
        + " | "
        + " | ".join(
            _verdict(_ratio(size["ours"], size[who]), SIZE_GOAL if who in EXPERTS else None)
            if who in size
            else "-"
            for who in peers
        )
        + " |",
        "",
    ]
    mate = next((s for s in scenarios if s["name"] == "teammate"), None)
    if mate is not None:
        pulls = [who for who in CONTENDERS if f"pull_{who}_s" in mate]
        lines += [
            "Teammate floor: `docker pull` on a clean daemon of "
            + ", ".join(
                f"{'our published' if who == 'ours' else SHORT[who] + chr(39) + 's'} image "
                f"{mate[f'pull_{who}_s']:.2f} s"
                for who in pulls
            )
            + (" (the faster is the floor)" if len(pulls) > 1 else "")
            + ("; buildx does not run this scenario." if "buildx" in peers else "."),
            "",
        ]
    grown = [who for who in CONTENDERS if any(who in v for v in stored.values())]
    lines += [
        "Push MB are bytes sent to the registry (counted on the wire); the registry's storage "
        f"grew by (MB, {' / '.join(SHORT[who] for who in grown)}): "
        + ", ".join(
            f"{name} " + " / ".join(_cell(v, who, MB, 1) for who in grown)
            for name, v in stored.items()
        )
        + ".",
        "",
        conditions(extra),
    ]
    overhead = extra.get("bench_s")
    if overhead:
        lines += [
            "",
            "Where the run's time went (s): "
            + ", ".join(f"{k} {v:.0f}" for k, v in overhead.items())
            + ".",
        ]
    return "\n".join(lines) + "\n"


def profile_md(summary: Mapping[str, Any]) -> str:
    """Where our time went per scenario: each node's status and seconds, and the engine's
    load of the image (seconds, layers and MB it registered), from the median sample."""
    lines = ["", "Where our time goes (`sandbox build --json`, the median sample):", ""]
    lines += [
        "| scenario | ours (s) | engine load (s) | loaded (layers, MB) | nodes (status, s) |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, p in summary["profile"].items():
        nodes = ", ".join(f"{n} {st} {sec:.1f}" for n, (st, sec) in p["nodes"].items())
        phases = p.get("phases") or {}
        load = f"{phases['load']:.2f}" if "load" in phases else "-"
        loaded = (
            f"{phases['layers_loaded']}, {phases['bytes_loaded'] / MB:.1f}"
            if "layers_loaded" in phases
            else "-"
        )
        lines.append(f"| {name} | {p['ours_s']:.2f} | {load} | {loaded} | {nodes or '-'} |")
    return "\n".join(lines) + "\n"


def per_repeat(samples: Sequence[Sample]) -> str:
    """Every sample: the order, the times, what rebuilt, pytest and load."""
    peers = [who for who in PEERS if any(who in s.seconds for s in samples)]
    lines = [
        "",
        "Every sample (`built`: nodes `sandbox build` built, `pulled`: pulled; `steps`: "
        f"Dockerfile steps not taken from cache, {' / '.join(SHORT[w] for w in peers)}):",
        "",
        "| repeat | scenario | order | ours (s) | "
        + " | ".join(f"{SHORT[who]} (s)" for who in peers)
        + " | built | pulled | steps | pytest running | load |",
        "| ---: | --- | --- | ---: |" + " ---: |" * len(peers) + " --- | --- | --- | --- | ---: |",
    ]
    for s in samples:
        built = [n for n, (status, _) in s.ours_nodes.items() if status == "built"]
        pulled = [n for n, (status, _) in s.ours_nodes.items() if status == "pulled"]
        steps = " / ".join(str(s.steps_run.get(who, "-")) for who in peers)
        times = " | ".join(f"{s.seconds[who]:.2f}" if who in s.seconds else "-" for who in peers)
        lines.append(
            f"| {s.repeat + 1} | {s.name} | {', '.join(s.order)} | {s.seconds['ours']:.2f} "
            f"| {times} | {', '.join(built) or '-'} | {', '.join(pulled) or '-'} | {steps} "
            f"| {'yes' if s.suite_running else 'no'} | {s.load_avg:.1f} |"
        )
    return "\n".join(lines) + "\n"


def chart(summary: Mapping[str, Any], extra: Mapping[str, Any]) -> bytes:
    """One panel per scenario (seconds, each contender that ran it; teammate with its floor),
    then the pushes after the bumps and the image size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: list[tuple[str, str, dict[str, float], float | None]] = []
    for s in summary["scenarios"]:
        values = {who: float(s[f"{who}_s"]) for who in CONTENDERS if f"{who}_s" in s}
        panels.append((s["name"], "s", values, s.get("floor_s")))
    for s in summary["scenarios"]:
        if s["name"] in BUMPS:
            values = {
                who: s[f"{who}_push_bytes"] / MB for who in CONTENDERS if f"{who}_push_bytes" in s
            }
            panels.append((f"push after {s['name']}", "MB", values, None))
    size = summary["image_size"]
    panels.append(("image size", "MB", {who: size[who] / MB for who in size}, None))
    columns = 4
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.4 * columns, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (title, unit, values, floor) in zip(axes.flat, panels, strict=False):
        who_ran = list(values)
        heights = [values[who] for who in who_ran]
        bars = ax.bar(
            [SHORT[who] for who in who_ran], heights, color=[COLORS[who] for who in who_ran]
        )
        top = max([*heights, floor or 0]) or 1.0
        for bar, value in zip(bars, heights, strict=True):
            ax.annotate(
                f"{value:.2f}" if value < 10 else f"{value:.0f}",
                (bar.get_x() + bar.get_width() / 2, value),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        if floor is not None:
            ax.axhline(floor, color="#c83232", linestyle="--", linewidth=1)
            ax.annotate(
                f"docker pull {floor:.1f} s",
                (len(who_ran) - 0.6, floor),
                ha="right",
                va="bottom",
                fontsize=8,
            )
        ax.set_ylim(0, top * 1.18)
        ratios = [
            f"/{SHORT[who]} {values['ours'] / values[who]:.2f}"
            for who in ("buildx", "buildkit", "docker")
            if values.get(who)
        ]
        if floor:
            ratios.insert(0, f"/pull {values['ours'] / floor:.2f}")
        ax.set_title(f"{title}\nours {', '.join(ratios)}", fontsize=8)
        ax.set_ylabel(unit)
        ax.tick_params(axis="x", labelsize=7)
    low, high = extra.get("load_avg", [0, 0])
    note = f"medians of {extra.get('repeat', '?')} repeat(s); load average {low}-{high}"
    if high > 3:
        note += " (loaded machine)"
    figure.suptitle(f"sandbox build vs the classic builder vs BuildKit ({note})", fontsize=11)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


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
