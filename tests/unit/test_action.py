"""action.yml (the composite GitHub action) is glue around scripts/ci-build.sh: every input it
declares reaches the script, every output it declares is one the script writes, and nothing
it uses is undeclared. (The script itself runs for real in tests/integration/test_ci_build.py.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ACTION: dict[str, Any] = yaml.safe_load((REPO / "action.yml").read_text())
SCRIPT = (REPO / "scripts" / "ci-build.sh").read_text()
STEPS: list[dict[str, Any]] = ACTION["runs"]["steps"]


def _expressions(text: str, context: str) -> set[str]:
    """The names `${{ <context>.NAME }}` refers to in `text`."""
    return set(re.findall(r"\$\{\{\s*" + re.escape(context) + r"\.([A-Za-z0-9_-]+)\s*\}\}", text))


def _step_env() -> dict[str, str]:
    return {k: str(v) for step in STEPS for k, v in (step.get("env") or {}).items()}


def test_the_action_is_composite_and_runs_the_script() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert any("scripts/ci-build.sh" in step.get("run", "") for step in STEPS)
    assert (REPO / "scripts" / "ci-build.sh").stat().st_mode & 0o111, "executable"


@pytest.mark.parametrize("name", sorted(ACTION["inputs"]))
def test_each_input_reaches_a_variable_the_steps_use(name: str) -> None:
    variables = [k for k, v in _step_env().items() if name in _expressions(v, "inputs")]

    assert variables, f"input {name} is declared but no step passes it on"
    runs = SCRIPT + "\n".join(step.get("run", "") for step in STEPS)
    for variable in variables:
        assert f"${{{variable}" in runs or f"${variable}" in runs, f"{variable} is not read"


def test_every_input_the_steps_use_is_declared() -> None:
    used = set().union(*(_expressions(yaml.safe_dump(step), "inputs") for step in STEPS))

    assert used == set(ACTION["inputs"])


@pytest.mark.parametrize("name", sorted(ACTION["outputs"]))
def test_each_output_is_one_the_script_writes(name: str) -> None:
    value = ACTION["outputs"][name]["value"]

    assert value == f"${{{{ steps.build.outputs.{name} }}}}"
    assert re.search(rf'print\(f"{re.escape(name)}=', SCRIPT), f"ci-build.sh never writes {name}="


def test_the_script_writes_no_undeclared_output() -> None:
    written = set(re.findall(r'print\(f"([a-z-]+)=', SCRIPT))

    assert written == set(ACTION["outputs"])


def test_the_build_step_is_the_one_the_outputs_name() -> None:
    assert [step.get("id") for step in STEPS if "ci-build.sh" in step.get("run", "")] == ["build"]
