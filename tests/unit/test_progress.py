"""What a person watching a build sees: queued, building (with a heartbeat), done, summary."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

from builder.core.progress import Progress, human_size
from builder.realize.execute import BuildStatus, NodeOutcome
from builder.store.cache import Layer, NodeEntry


def _entry(name: str, size: int) -> NodeEntry:
    return NodeEntry(
        name=name, key="sha256:k", layers=(Layer(diff_id="sha256:" + "a" * 64, size=size),)
    )


def test_a_long_step_keeps_saying_it_is_building_until_it_is_done() -> None:
    out = io.StringIO()
    progress = Progress(out, heartbeat=0.05)
    progress.queued("tools.npm", ["runtime.node"])
    progress.start("tools.npm")
    time.sleep(0.2)
    progress.done("tools.npm", "built", 0.2, _entry("tools.npm", 2_500_000))
    lines = out.getvalue().splitlines()
    assert lines[0] == "  queued    tools.npm (after runtime.node)"
    assert lines[1] == "  building  tools.npm ..."
    beats = [line for line in lines if line.endswith("s ...") and "tools.npm" in line]
    assert beats, lines
    assert "built" in lines[-1]
    assert "2.5 MB" in lines[-1]
    time.sleep(0.15)
    assert out.getvalue().splitlines()[-1] == lines[-1], "heartbeat after the node was done"


def test_summary_table_lists_every_node_with_status_time_and_size() -> None:
    out = io.StringIO()
    nodes = [
        NodeOutcome(
            name="base",
            key="k1",
            status=BuildStatus.CACHED,
            seconds=0.0,
            entry=_entry("base", 1000),
        ),
        NodeOutcome(
            name="system",
            key="k2",
            status=BuildStatus.BUILT,
            seconds=20.4,
            entry=_entry("system", 5),
        ),
    ]
    Progress(out).summary(nodes, 21.0)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["node", "status", "time", "size"]
    assert lines[1].split() == ["base", "cached", "-", "1.0", "KB"]
    assert lines[2].split() == ["system", "built", "20.4s", "5", "B"]
    assert lines[3] == "2 nodes (1 built, 1 cached) in 21.0s"


def test_quiet_progress_says_nothing() -> None:
    out = io.StringIO()
    Progress(out, quiet=True).say("hello")
    assert out.getvalue() == ""
    assert human_size(1_500_000_000) == "1.5 GB"


def test_the_heartbeat_says_when_a_step_has_printed_nothing_for_a_while(tmp_path: Path) -> None:
    out = io.StringIO()
    progress = Progress(out, heartbeat=0.3)
    log = tmp_path / "system.log"
    progress.start("system", log=log)
    log.write_text("Reading package lists...\n")
    time.sleep(1.0)
    progress.done("system", "built", 1.0, _entry("system", 5))
    beats = [line for line in out.getvalue().splitlines() if "no output for" in line]
    assert beats, out.getvalue()
    assert beats[-1].endswith(f"(log: {log})")


def test_a_log_left_by_an_earlier_build_is_not_called_quiet(tmp_path: Path) -> None:
    out = io.StringIO()
    log = tmp_path / "runtime.node.log"
    log.write_text("old\n")
    old = time.time() - 3600
    os.utime(log, (old, old))
    progress = Progress(out, heartbeat=0.1)
    progress.start("runtime.node", log=log)  # a host step: it writes no log this time
    time.sleep(0.35)
    progress.done("runtime.node", "built", 0.3, _entry("runtime.node", 5))
    assert "no output" not in out.getvalue()
    assert "building  runtime.node" in out.getvalue()


def test_a_lock_step_gets_the_heartbeat_with_the_newest_of_its_logs(tmp_path: Path) -> None:
    out = io.StringIO()
    progress = Progress(out, heartbeat=0.3)
    madison, resolve = tmp_path / "apt-madison.log", tmp_path / "apt-resolve.log"
    with progress.watch("system", [madison, resolve]):
        madison.write_text("system: 1 requested\n")
        time.sleep(0.1)
        resolve.write_text("Reading package lists...\n")  # the second step, gone quiet
        time.sleep(1.0)
    time.sleep(0.4)
    lines = out.getvalue().splitlines()
    beats = [line for line in lines if line.startswith("  resolving system ")]
    assert beats, out.getvalue()
    assert "no output for" in beats[-1]
    assert beats[-1].endswith(f"(log: {resolve})")
    assert lines[-1] == beats[-1], "a heartbeat after the step was done"
