"""`sandbox outdated` and `sandbox lock --update --security` against Debian's real mirror.

The lock is made older the way a lock taken before a Debian security advisory looks: the
packages whose locked version comes from bookworm-security are put back to the version the
bookworm point release carries (with that version's own sha256, from the mirror), and every
key is recomputed as `sandbox lock` computes it, so `lock --check` still passes. Which
packages those are is read from the mirror now, so the test follows Debian as it moves.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from builder.core.keys import node_key
from builder.kinds import KINDS
from builder.model import lockfile
from builder.model.lockfile import Lock, NodeLock
from builder.resolve.debian import parse_stanzas
from tests.integration.conftest import Project, docker

pytestmark = pytest.mark.docker

PLATFORM = "linux/amd64"
SPEC = """
[image]
name = "sandbox-test/outdated"
user = "agent"

[base]
bootstrap = { suite = "bookworm" }

[system]
packages = ["jq", "openssl"]
"""
_NAME = re.compile(r'\bname = "([^"]+)"')


def _apt(image: str, script: str) -> str:
    return docker("run", "--rm", "--user", "0", image, "sh", "-c", f"{_UPDATE}\n{script}")


_UPDATE = "apt-get update -qq >/dev/null"


def _older_from_main(image: str, packages: dict[str, str]) -> dict[str, dict[str, str]]:
    """Packages whose locked version only bookworm-security carries, with main's version."""
    names = " ".join(sorted(packages))
    suites: dict[tuple[str, str], set[str]] = {}
    for line in _apt(image, f"apt-cache madison {names}").splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2].endswith("Packages"):
            suite = parts[2].split()[1].split("/")[0]
            suites.setdefault((parts[0], parts[1]), set()).add(suite)
    older = {}
    for name, locked in packages.items():
        if suites.get((name, locked), set()) != {"bookworm-security"}:
            continue
        main = [v for (n, v), s in suites.items() if n == name and "bookworm" in s]
        if main and main[0] != locked:
            older[name] = main[0]
    pins = " ".join(f"{n}={v}" for n, v in sorted(older.items()))
    shown = parse_stanzas(_apt(image, f"apt-cache show {pins}")) if older else []
    return {
        s["Package"]: {"name": s["Package"], "version": s["Version"], "sha256": s["SHA256"]}
        for s in shown
        if older.get(s["Package"]) == s["Version"]
    }


def _rekeyed(lock: Lock, system_inputs: dict[str, object]) -> Lock:
    """`lock` with new system inputs and every key recomputed, as `sandbox lock` writes it."""
    nodes: dict[str, NodeLock] = {}
    for name, node in lock.platforms[PLATFORM].items():
        inputs = system_inputs if name == "system" else node.inputs
        parents = {p: nodes[p].key for p in node.parents}
        recipe = KINDS.of(name).recipe
        key = node_key(recipe=recipe, inputs=inputs, parents=parents, platform=PLATFORM)
        nodes[name] = replace(node, inputs=inputs, key=key)
    return replace(lock, platforms={PLATFORM: nodes})


def test_outdated_flags_security_updates_and_lock_takes_just_those(
    project: Project, base_image: str
) -> None:
    project.write(SPEC)
    project.ok("lock")
    current = lockfile.read(project.lock, KINDS)
    system = current.platforms[PLATFORM]["system"]
    locked = {p["name"]: p for p in system.inputs["packages"]}
    older = _older_from_main(base_image, {n: p["version"] for n, p in locked.items()})
    assert older, (
        "no package of the jq/openssl closure has a bookworm-security version newer than the "
        f"point release right now; pick other [system].packages in this test ({sorted(locked)})"
    )
    packages = [older.get(n, p) for n, p in sorted(locked.items())]
    project.lock.write_text(
        lockfile.dumps(_rekeyed(current, {**system.inputs, "packages": packages}))
    )
    assert project.sandbox("lock", "--check").code == 0
    before = project.lock.read_text()

    table = project.sandbox("outdated")
    assert table.code == 1, table.err
    for name, pin in older.items():
        row = next(line.split() for line in table.out.splitlines() if line.split()[1:2] == [name])
        assert row == ["system", name, pin["version"], *[locked[name]["version"]] * 2, "security"]
    assert "security updates" in table.out.splitlines()[-1]

    result = project.sandbox("outdated", "--json")
    assert result.code == 1
    report = json.loads(result.out)
    flagged = {u["package"] for u in report["updates"] if u["security"]}
    assert report["security"] == len(flagged) > 0
    assert set(older) <= flagged
    for update in report["updates"]:
        if update["package"] in older:
            assert update["node"] == "system"
            assert update["locked"] == older[update["package"]]["version"]
            assert update["latest"] == locked[update["package"]]["version"]

    project.ok("lock", "--update", "--security")
    after = project.lock.read_text()
    # Only the flagged packages' pins moved (and the keys over them); every other line stays.
    moved = set(before.splitlines()) ^ set(after.splitlines())
    for line in moved:
        match = _NAME.search(line)
        assert (match and match.group(1) in flagged) or line.lstrip().startswith("key = "), line
    stayed = [line for line in before.splitlines() if line not in moved]
    assert stayed == [line for line in after.splitlines() if line not in moved]
    updated = lockfile.read(project.lock, KINDS).platforms[PLATFORM]
    now = {p["name"]: p for p in updated["system"].inputs["packages"]}
    for name in older:
        assert now[name] == locked[name], f"{name} was not moved back to the security version"
    assert updated["base"] == current.platforms[PLATFORM]["base"]
    assert project.sandbox("lock", "--check").code == 0

    again = project.sandbox("outdated", "--json")
    assert again.code == 0, again.out
    assert json.loads(again.out)["security"] == 0
