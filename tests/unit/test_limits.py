"""The bounds of network steps: settings read from the environment, and a step stopped."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from builder.core import limits, proc
from builder.core.errors import BuildError, ResolutionError, SpecError
from builder.engine.interface import RunResult, require_success


def test_each_tool_gets_the_network_timeout_in_its_own_terms(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SANDBOX_NET_TIMEOUT", "7")
    assert "-o Acquire::http::Timeout=7 " in limits.apt_options()
    assert "Acquire::Retries=2" in limits.apt_options()
    env = limits.tool_env()
    assert env["PIP_TIMEOUT"] == "7"
    assert env["npm_config_fetch_timeout"] == "7000"
    assert env["UV_HTTP_TIMEOUT"] == "7"
    assert limits.write_wgetrc(tmp_path).read_text().startswith("timeout = 7\ntries = 3\n")


def test_defaults_and_a_bad_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANDBOX_STEP_TIMEOUT", raising=False)
    assert limits.step_timeout() == limits.DEFAULT_STEP_TIMEOUT
    monkeypatch.setenv("SANDBOX_STEP_TIMEOUT", "soon")
    with pytest.raises(SpecError, match=r"SANDBOX_STEP_TIMEOUT='soon' is not a number"):
        limits.step_timeout()
    monkeypatch.setenv("SANDBOX_NET_TIMEOUT", "-1")
    with pytest.raises(SpecError, match="SANDBOX_NET_TIMEOUT"):
        limits.net_timeout()


def test_a_host_program_past_the_step_limit_is_stopped_with_its_children(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SANDBOX_STEP_TIMEOUT", "0.5")
    marker = tmp_path / "child-ran-on"
    log = tmp_path / "base.log"
    started = time.monotonic()
    script = f"echo starting >&2; (sleep 3; touch {marker}) & wait"
    with pytest.raises(ResolutionError) as caught:
        proc.run(["sh", "-c", script], error=ResolutionError, what="debootstrap", log=log)
    assert time.monotonic() - started < 2.5
    message = str(caught.value)
    assert "debootstrap was stopped after 0s" in message or "after 1s" in message
    assert "SANDBOX_STEP_TIMEOUT=0.5" in message
    assert str(log) in message
    assert "starting" in log.read_text()
    time.sleep(3.2)
    assert not marker.exists(), "the program's child outlived it"


def test_a_host_program_that_fails_names_itself_and_keeps_stdout(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    assert proc.run(["sh", "-c", "echo out"], error=BuildError, what="x", log=log) == "out\n"
    assert log.read_text().endswith("out\n")
    with pytest.raises(BuildError, match=r"x failed with exit 3 \(full log: .*\):\nbad"):
        proc.run(["sh", "-c", "echo bad >&2; exit 3"], error=BuildError, what="x", log=log)
    with pytest.raises(BuildError, match="bad"):
        proc.run(["sh", "-c", "echo bad >&2; exit 3"], error=BuildError, what="x")


def test_a_container_stopped_at_the_limit_fails_naming_the_step_its_log_and_the_setting(
    tmp_path: Path,
) -> None:
    log = tmp_path / "system.log"
    log.write_text("Get:1 http://mirror bookworm InRelease\n")
    stopped = RunResult(container="c", exit_code=137, stopped_after=5.0)
    with pytest.raises(BuildError) as caught:
        require_success(stopped, what="system: apt-get install", log=log)
    message = str(caught.value)
    assert message.startswith("system: apt-get install was stopped after 5s")
    assert "SANDBOX_STEP_TIMEOUT=5" in message
    assert f"Its log: {log}" in message
