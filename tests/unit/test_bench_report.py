"""The benchmark's report: results.json for the four contenders, the tables, the chart."""

from __future__ import annotations

import json
from pathlib import Path

from bench import report

SCENARIOS = ["cold", "teammate", "noop", "bump-npm-tool", "bump-runtime"]


def _sample(name: str, repeat: int, ours: float, *, load: float = 0.5) -> report.Sample:
    """buildx runs every scenario but teammate."""
    teammate = name == "teammate"
    buildx: dict[str, int] = {} if teammate else {"buildx": 2_000_000}
    return report.Sample(
        name=name,
        repeat=repeat,
        order=["ours", "docker", "buildkit", *(["buildx"] if buildx else [])],
        seconds={
            "ours": ours,
            "docker": 40.0,
            "buildkit": 20.0,
            **({"buildx": 44.0} if buildx else {}),
        },
        push_bytes={}
        if teammate
        else {"ours": 1_000_000, "docker": 9_000_000, "buildkit": 0, **buildx},
        stored_bytes={} if teammate else {"ours": 1, "docker": 2, "buildkit": 0, "buildx": 3},
        size={"ours": 900_000_000, "docker": 1_100_000_000, "buildkit": 1_000_000_000, **buildx},
        steps_run={"docker": 3, "buildkit": 2},
        ours_nodes={"system": ["built", ours / 2], "tools.npm": ["cached", 0.0]},
        ours_phases={"nodes": ours / 2, "load": ours / 4, "layers_loaded": 3, "bytes_loaded": 5e6},
        pull_s={"ours": 12.0, "buildkit": 10.0} if teammate else {},
        suite_running=False,
        load_avg=load,
    )


def test_results_hold_every_scenario_for_each_contender_that_ran_it(tmp_path: Path) -> None:
    samples = [_sample(n, r, 10.0 + r) for r in range(3) for n in SCENARIOS]
    extra = {"repeat": 3, "quiet": True, "load_avg": [0.5, 0.5], "builder": "abc"}
    report.write(tmp_path, samples, SCENARIOS, extra)
    data = json.loads((tmp_path / "results.json").read_text())
    rows = {row["name"]: row for row in data["scenarios"]}
    assert list(rows) == SCENARIOS
    for name, row in rows.items():
        assert (row["ours_s"], row["docker_s"], row["buildkit_s"]) == (11.0, 40.0, 20.0)
        assert (row["ours_size"], row["buildkit_size"]) == (900_000_000, 1_000_000_000)
        if name != "teammate":
            assert row["ours_push_bytes"] == 1_000_000
            assert row["docker_push_bytes"] == 9_000_000
            assert row["buildkit_push_bytes"] == 0
            assert (row["buildx_s"], row["buildx_push_bytes"]) == (44.0, 2_000_000)
    assert not [key for key in rows["teammate"] if key.startswith("buildx")]
    assert rows["teammate"]["floor_s"] == 10.0  # the faster pull
    assert data["image_size"] == {
        "ours": 900_000_000,
        "docker": 1_100_000_000,
        "buildkit": 1e9,
        "buildx": 2_000_000,
    }
    assert data["profile"]["cold"]["nodes"]["system"] == ["built", 5.5]
    assert rows["bump-runtime"]["ours_load_s"] == 2.75, "the engine load of the median"
    assert data["profile"]["cold"]["phases"]["layers_loaded"] == 3
    assert len(data["details"]["samples"]) == 15
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_tables_say_which_goal_is_met_and_which_missed(tmp_path: Path) -> None:
    samples = [_sample(n, 0, 11.0) for n in SCENARIOS]
    report.write(tmp_path, samples, SCENARIOS, {"repeat": 1, "load_avg": [0.5, 0.5]})
    text = (tmp_path / "results.md").read_text()
    lines: dict[str, str] = {}  # the first table's row of each scenario
    for line in text.splitlines():
        if line.startswith("| "):
            lines.setdefault(line.split(" | ")[0].strip("| "), line)
    assert "ours/BuildKit 20.10 0.55 (goal <= 0.8: met)" in lines["cold"]  # 11 / 20
    assert "ours/buildx 0.25 (goal <= 0.8: met)" in lines["cold"]  # 11 / 44
    assert "ours/BuildKit 20.10 0.55 (goal <= 0.5: **missed**)" in lines["bump-npm-tool"]
    assert "ours/buildx 0.25 (goal <= 0.5: met)" in lines["bump-npm-tool"]
    assert "ours/floor 1.10 (goal <= 1.2: met); floor 10.00 s" in lines["teammate"]
    assert "| 20.00 | - | 0.28 | 0.55 | - |" in lines["teammate"]  # buildx did not run it
    assert "| bump-runtime | 11.00 | 2.75 | 3, 5.0 |" in text, "where our time goes: the load"
    assert (
        "| bump-runtime | 1.0 | 9.0 | 0.0 | 2.0 | 0.11 | - | 0.50 (goal <= 0.25: **missed**) |"
        in text
    )
    assert "loaded machine" not in text


def test_numbers_from_a_loaded_machine_are_labelled_so(tmp_path: Path) -> None:
    samples = [_sample(n, 0, 11.0, load=6.2) for n in SCENARIOS]
    report.write(tmp_path, samples, SCENARIOS, {"repeat": 1, "load_avg": [3.9, 6.2]})
    assert "**a loaded machine**" in (tmp_path / "results.md").read_text()
    report.rerender(tmp_path)  # and again from results.json alone
    assert "**a loaded machine**" in (tmp_path / "results.md").read_text()


def test_the_multiplatform_section_survives_a_rewrite_of_the_results(tmp_path: Path) -> None:
    multi = {
        "platforms": {
            "linux/amd64": {"seconds": 100.0, "nodes": {"base": 60.0, "system": 40.0}},
            "linux/arm64": {"seconds": 400.0, "nodes": {"base": 150.0, "system": 250.0}},
        },
        "host": "linux/amd64",
        "repeat": 1,
        "load_avg": [2.0, 3.0],
    }
    report.write_multiplatform(tmp_path, multi)
    first = (tmp_path / "results.md").read_text()
    assert "| node | linux/amd64 (native, s) | linux/arm64 (emulated, s) | ratio |" in first
    assert "| system | 40.0 | 250.0 | 6.2x |" in first
    assert "| whole build | 100.0 | 400.0 | 4.0x |" in first

    samples = [_sample(n, 0, 10.0) for n in SCENARIOS]
    report.write(tmp_path, samples, SCENARIOS, {"repeat": 1, "load_avg": [0.5, 0.5]})
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["multiplatform"] == multi, "bench/run.py's rewrite keeps it"
    text = (tmp_path / "results.md").read_text()
    assert text.startswith("| scenario |")
    assert text.count(report.MULTIPLATFORM_HEADING) == 1

    report.write_multiplatform(tmp_path, {**multi, "repeat": 2})
    again = (tmp_path / "results.md").read_text()
    assert again.count(report.MULTIPLATFORM_HEADING) == 1, "replaced, not added"
    assert again.startswith("| scenario |"), "the contenders' tables stay"
