"""Agent CLIs pinned for real (issue 27): the image keeps each at the lock's version.

Claude Code's updater is turned off the way it documents (DISABLE_AUTOUPDATER=1, in the Env,
so the agent's login shell sees it too: builder/model/agents.py), and `sandbox check` proves
that the version `bash -lc '<cli> --version'` reports, as Risoluto runs the agent, is the
lock's pin, for Claude Code and Codex alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import Project, docker
from tests.integration.risoluto_spawn import run_agent

pytestmark = pytest.mark.docker

CLAUDE, CODEX = "2.1.332", "0.171.0"
SPEC = f"""
[image]
name = "sandbox-test/agent-clis"

[base]
bootstrap = {{ suite = "bookworm" }}

[system]
packages = ["git"]

[runtimes]
node = {{ version = "22", provider = "pypi" }}

[tools]
npm = ["@anthropic-ai/claude-code@{CLAUDE}", "@openai/codex@{CODEX}"]
"""


def test_check_proves_the_pinned_versions_and_claude_codes_updater_is_off(
    project: Project, base_image: str, tmp_path: Path
) -> None:
    project.write(SPEC)
    project.ok("lock")
    image = json.loads(project.ok("build", "--json").out)["image"]["id"]

    env = json.loads(docker("image", "inspect", "-f", "{{json .Config.Env}}", image))
    assert "DISABLE_AUTOUPDATER=1" in env
    seen = run_agent(
        image,
        'echo "updater off: $DISABLE_AUTOUPDATER"; claude --version; codex --version',
        workspace=tmp_path / "workspace",
    ).splitlines()
    assert seen[0] == "updater off: 1", seen
    assert CLAUDE in seen[1], seen
    assert CODEX in seen[2], seen

    checked = project.sandbox("check", "--json")
    results = {r["check"]: r for r in json.loads(checked.out)}
    assert checked.code == 0, checked.err
    assert results["tools.npm claude"]["ok"], results["tools.npm claude"]
    assert results["tools.npm claude"]["detail"].endswith("(the lock's)")
    assert results["tools.npm codex"]["detail"].endswith("(the lock's)")
