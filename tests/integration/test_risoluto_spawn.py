"""The image as Risoluto runs the agent: every runtime and tool is found in its login shell.

Risoluto starts the agent with `docker run ... IMAGE bash -lc "<its entrypoint script>"`, the
image's ENTRYPOINT kept, and runs the agent's own commands with `bash -lc` again
(tests/integration/risoluto_spawn.py transcribes src/docker/spawn.ts). Debian's /etc/profile
resets PATH in a login shell, so what the image adds under /opt/sandbox is found only through
the image's /etc/profile.d script: without it, the same run fails. The spec is
test_tools_runtimes.py's (the same text, the same keys), so the session builds it once.
(An `[base] image` with its own ENTRYPOINT: test_extend_base.py runs it the same way.)
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import Project, docker
from tests.integration.risoluto_spawn import run_agent
from tests.integration.test_tools_runtimes import AGENT_SPEC

pytestmark = pytest.mark.docker

PROFILE = "/etc/profile.d/sandbox-builder.sh"
# Every executable of the lock, then each one run: `set -e`, so a missing one fails the run.
COMMAND = (
    "set -e; for t in node npm npx codex tsc ruff python3 git jq; do command -v $t; done; "
    "node --version; codex --version; tsc --version; ruff --version; umask"
)


def test_every_runtime_and_tool_runs_in_the_agents_login_shell(
    project: Project, base_image: str, tmp_path: Path
) -> None:
    project.write(AGENT_SPEC.format(node="22", typescript="typescript@5"))
    project.ok("lock")
    image = json.loads(project.ok("build", "--json").out)["image"]["id"]

    seen = run_agent(image, COMMAND, workspace=tmp_path / "workspace").split("\n")

    found = dict(zip(["node", "npm", "npx", "codex", "tsc", "ruff"], seen, strict=False))
    assert all(path.startswith("/opt/sandbox/") for path in found.values()), seen
    assert seen[9].startswith("v22."), seen
    assert seen[10].startswith("codex-cli "), seen
    assert seen[11].startswith("Version 5."), seen
    assert seen[12].startswith("ruff "), seen
    assert seen[13] == "0077", "Risoluto's umask reaches the agent's command"

    without = _without_profile(image, tmp_path)
    with pytest.raises(AssertionError, match=r"exit 1\b"):
        run_agent(without, COMMAND, workspace=tmp_path / "workspace-2")


def _without_profile(image: str, tmp_path: Path) -> str:
    """`image` with its login-shell environment file removed (and nothing else)."""
    user = docker("image", "inspect", "-f", "{{.Config.User}}", image)
    context = tmp_path / "without-profile"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {image}\nUSER root\nRUN rm {PROFILE}\nUSER {user or 'root'}\n"
    )
    tag = "sandbox-test/without-profile:latest"
    subprocess.run(
        ["docker", "build", "-q", "-t", tag, str(context)],
        check=True,
        capture_output=True,
        env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"},
    )
    return tag
