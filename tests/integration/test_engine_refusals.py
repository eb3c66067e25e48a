"""An engine that refuses (issue 20): the real daemon cannot start a container it was asked to.

`sandbox check --image` of an image with no /bin/sh (one file, `docker import`ed here): the
engine creates the confined container and the runtime refuses to start it. The user gets one
paragraph naming the step, the engine and what it said, exit 5, no traceback, and no
container left behind.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Project, docker

pytestmark = pytest.mark.docker

SPEC = """
[image]
name = "sandbox-test/refused"

[base]
image = "{base}"
"""


@pytest.fixture
def shell_less_image(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "motd").write_text("no shell here\n")
    packed = subprocess.run(["tar", "-C", str(root), "-c", "."], capture_output=True, check=True)
    made = subprocess.run(
        ["docker", "import", "--change", "USER 1000", "-", "sandbox-test/no-shell:1"],
        input=packed.stdout,
        capture_output=True,
        check=True,
    )
    image = made.stdout.decode().strip()
    yield image
    docker("rmi", "--force", image, check=False)


def test_a_container_the_engine_cannot_start_names_step_engine_and_message(
    project: Project, base_image: str, shell_less_image: str
) -> None:
    project.write(SPEC.format(base=base_image))
    project.ok("lock")
    version = docker("version", "--format", "{{.Server.Version}}")

    failed = project.sandbox("check", "--image", shell_less_image)

    assert failed.code == 5, failed.err
    assert "Traceback" not in failed.err
    error = failed.err[failed.err.index("error: ") :]
    assert error.startswith(
        f"error: check: Docker Engine {version} refused to run {shell_less_image} the way "
        "the orchestrator would"
    )
    # The first container of the check (Risoluto's helper that chowns HOME, then the probe
    # script's /bin/sh) is what the runtime refuses; its own words are quoted.
    assert re.search(r'exec: "(chown|/bin/sh)": .*(not found|no such file)', error), error
    left = docker("ps", "--all", "--quiet", "--filter", f"ancestor={shell_less_image}")
    assert left == ""
    assert re.search(r"\(HTTP [45]\d\d\)", error), error
