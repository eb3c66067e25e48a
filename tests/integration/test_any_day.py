"""The same lock gives the same layers on any day (issue 32).

CI failed across midnight: the base's /etc/shadow held the build's day as the last password
change, so a build after midnight differed from one before it. Here the second build runs
with the clock of debootstrap and of every step container moved three days ahead (libfaketime,
tests/integration/faketime.py), in a clean cache and store, and must give the same base and
system layers (the system layer adds the image's user: useradd writes /etc/shadow again).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.integration.conftest import Project

pytestmark = pytest.mark.docker

SPEC = """
[image]
name = "sandbox-test/any-day"
user = "agent"

[base]
bootstrap = { suite = "bookworm" }

[system]
packages = ["jq"]
"""


def _files(layer: Path) -> dict[str, str]:
    """name -> what a reader would compare (type, mode, owners, mtime, content hash)."""
    found = {}
    with tarfile.open(layer) as tar:
        for m in tar:
            data = tar.extractfile(m) if m.isreg() else None
            digest = hashlib.sha256(data.read()).hexdigest()[:12] if data else m.linkname
            found[m.name] = f"{m.type!r} {m.mode:o} {m.uid}:{m.gid} {m.mtime} {digest}"
    return found


def _differing(one: Path, other: Path) -> list[str]:
    a, b = _files(one), _files(other)
    return sorted(n for n in a.keys() | b.keys() if a.get(n) != b.get(n))


def test_a_build_three_days_later_gives_the_same_layers(
    project: Project, base_image: str, tmp_path: Path
) -> None:
    project.write(SPEC)
    project.ok("lock")
    today = {n["name"]: n["layer"] for n in json.loads(project.ok("build", "--json").out)["nodes"]}

    later_cache, later_store = tmp_path / "cache-later", tmp_path / "store-later"
    later = subprocess.run(
        [
            *(sys.executable, "-m", "tests.integration.faketime", "+3d"),
            *("-f", str(project.spec), "--cache-dir", str(later_cache), "build", "--json"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "SANDBOX_STORE_DIR": str(later_store)},
        check=False,
        timeout=1800,
    )
    assert later.returncode == 0, later.stderr
    nodes = json.loads(later.stdout)["nodes"]
    assert [n["status"] for n in nodes] == ["built", "built"], "the later build reused a node"
    moved = {n["name"]: n["layer"] for n in nodes}

    for name in ("base", "system"):
        if moved[name] != today[name]:
            hexes = (today[name], moved[name])
            one, other = (
                cache / "layers" / f"{h.removeprefix('sha256:')}.tar"
                for cache, h in zip((project.cache, later_cache), hexes, strict=True)
            )
            shown = ", ".join(_differing(one, other)[:10])
            pytest.fail(f"{name}: the layer built 3 days later differs in {shown}")
