"""The system layer is slim as Debian's own slim images are, unless `[system] docs = true`.

dpkg is told to leave documentation (but copyright files), man and info pages and
translations out of what the system step installs (builder/realize/recipes/system.py), and the
config stays in the image so what the agent installs later is slim alike.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.integration.conftest import Project

pytestmark = pytest.mark.docker

SPEC = """
[image]
name = "sandbox-test/slim"
user = "agent"

[base]
bootstrap = {{ suite = "bookworm" }}

[system]
packages = ["jq"]
{docs}
"""


def _system_files(project: Project, built: str) -> set[str]:
    layer = next(n["layer"] for n in json.loads(built)["nodes"] if n["name"] == "system")
    path = project.cache / "layers" / f"{layer.removeprefix('sha256:')}.tar"
    with tarfile.open(path) as tar:
        return {m.name for m in tar if not m.isdir()}


def test_docs_man_pages_and_translations_are_left_out_unless_kept(
    project: Project, base_image: str, tmp_path: Path
) -> None:
    project.write(SPEC.format(docs=""))
    project.ok("lock")
    slim = _system_files(project, project.ok("build", "--json").out)
    project.write(SPEC.format(docs="docs = true"))
    project.ok("lock")
    kept = _system_files(project, project.ok("build", "--json").out)

    assert "usr/bin/jq" in slim
    assert "usr/share/doc/jq/copyright" in slim  # licences stay
    assert "etc/dpkg/dpkg.cfg.d/sandbox-builder-slim" in slim
    assert not [n for n in slim if n.startswith("usr/share/man/")]
    assert not [n for n in slim if n.startswith("usr/share/doc/") and "copyright" not in n]
    assert "usr/share/man/man1/jq.1.gz" in kept
    assert "etc/dpkg/dpkg.cfg.d/sandbox-builder-slim" not in kept
