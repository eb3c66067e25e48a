"""A kind registered from outside builder/ (tests/integration/gemkind.py) parses, locks,
builds, appears in the SBOM and passes `check`, through the real CLI, with no module of
builder/ edited: what "one place per node kind" promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.integration.conftest import Project, Run

pytestmark = pytest.mark.docker

SPEC = """
[image]
name = "sandbox-test/gems"
user = "agent"

[base]
bootstrap = { suite = "bookworm" }

[system]
packages = ["git"]  # what `check` asks of every agent's image

[tools.gem]
gems = ["hello", "ciao"]
"""


def _with_gems(project: Project, *args: str) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.gemkind", "-f", str(project.spec), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "SANDBOX_CACHE_DIR": str(project.cache)},
        check=False,
        timeout=1800,
    )
    assert done.returncode == 0, (
        f"sandbox {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    )
    return Run(code=done.returncode, out=done.stdout, err=done.stderr)


def test_a_kind_registered_by_a_test_parses_locks_builds_lists_and_checks(
    project: Project, base_image: str
) -> None:
    project.write(SPEC)

    refused = project.sandbox("lock")  # the plain CLI does not know the table
    _with_gems(project, "lock")
    built = json.loads(_with_gems(project, "build", "--json").out)
    sbom = json.loads(_with_gems(project, "sbom", "--format", "cyclonedx").out)
    checked = json.loads(_with_gems(project, "check", "--json").out)

    assert refused.code != 0
    assert "gem" in refused.err
    lock = project.lock.read_text()
    assert '[platforms."linux/amd64".nodes."tools.gem"]' in lock
    assert 'name = "hello"' in lock
    assert {n["name"] for n in built["nodes"]} >= {"base", "system", "tools.gem"}
    purls = {c["purl"] for c in sbom["components"]}
    assert {"pkg:gem/hello@1.0.0", "pkg:gem/ciao@1.0.0"} <= purls
    results = {r["check"]: r for r in checked}
    assert results["tools.gem hello"]["ok"], results["tools.gem hello"]
    assert "hello 1.0.0" in results["tools.gem hello"]["detail"]
    assert results["tools.gem ciao"]["ok"], results["tools.gem ciao"]
