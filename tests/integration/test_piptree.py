"""pip tools laid on the host (builder/kinds/pip/) against the truth: the venvs `python3 -m
venv` and pip make in a container of the image's python, for the repository's own tools
(ruff, a binary in a wheel's scripts; mypy, a closure of six with compiled modules).

The build lays both on the host, without waiting for the system layer, and `sandbox check`
runs every executable as uid 12345 in a login shell. The venvs are then compared file by
file (paths, types, modes, owners, mtimes, link targets, bytes) with the layer the container
recipe makes from the same lock; what still differs is listed here, and why.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from pathlib import Path

import pytest

from builder.kinds import KINDS
from builder.model import lockfile
from builder.store.cache import Cache
from tests.integration import containerci
from tests.integration.conftest import Project

pytestmark = pytest.mark.docker

SPEC = """
[image]
name = "sandbox-test/piptree"

[base]
bootstrap = { suite = "bookworm" }

[system]
packages = ["git", "python3", "python3-venv"]

[tools]
pip = ["ruff==0.17.6", "mypy==2.4.1"]
"""
PREFIX = "opt/sandbox/tools/pip"
TOOLS = ("mypy", "ruff")

Listing = dict[str, tuple[str, int, int, int, int, str, str]]


def _listing(layer: Path) -> tuple[Listing, dict[str, bytes]]:
    """name -> (type, mode, uid, gid, mtime, link target, sha256 of the bytes); and the bytes
    of the files that may differ (launchers, .pyc headers)."""
    found: Listing = {}
    kept: dict[str, bytes] = {}
    with tarfile.open(layer) as tar:
        for m in tar:
            data = tar.extractfile(m) if m.isreg() else None
            content = data.read() if data is not None else b""
            digest = hashlib.sha256(content).hexdigest() if data is not None else ""
            found[m.name] = (
                m.type.decode(),
                m.mode,
                m.uid,
                m.gid,
                int(m.mtime),
                m.linkname,
                digest,
            )
            if "/bin/" in m.name or m.name.endswith(".pyc"):
                kept[m.name] = content
    return found, kept


def _expected(name: str, ours: bytes, pips: bytes) -> str | None:
    """Why file `name` may differ between the host-laid venv and pip's, or None."""
    if name.endswith(".dist-info/INSTALLER"):
        return "INSTALLER: sandbox-builder, not pip, installed it"
    if name.endswith(".dist-info/RECORD"):
        return "RECORD: pip lists the .pyc it compiled and its INSTALLER's hash"
    if name.endswith(".pyc") and ours[:16] == pips[:16]:
        # same magic, checked-hash flags and source hash; the marshalled code differs in a
        # few files: pip compiles in its own process, whose imports change which objects
        # marshal flags as referenced (ours compile in a fresh interpreter: venv._compile);
        # either loads on any 3.11.
        return "pyc body: compiled by the host's 3.11"
    if "/bin/" in name and ours.replace(b'"', b"'") == pips.replace(b'"', b"'"):
        return "launcher: installer's template quotes with \", pip's (distlib) with '"
    return None


EXTENSION = ".cpython-311-x86_64-linux-gnu.so"


def test_pip_tools_are_laid_on_the_host_as_pip_lays_them(project: Project) -> None:
    project.write(SPEC)
    project.ok("lock")
    built = project.ok("build", "--json")
    for tool in TOOLS:  # cached when an earlier test of the session laid the same venv
        assert re.search(rf"tools.pip: {tool} (cached \()?assembled on the host", built.err), (
            built.err
        )
    project.ok("check")  # every executable --version, as uid 12345 in a login shell

    lock = lockfile.read(project.lock, KINDS)
    node = lock.nodes("linux/amd64")["tools.pip"]
    assert KINDS.of(node.name).needs_stage(node) is False
    assert KINDS.of(node.name).placement(node) == [f"{t}: assembled on the host" for t in TOOLS]
    cache = Cache(project.cache)
    entry = cache.entry(node.key)
    assert entry is not None
    assert len(entry.layers) == len(TOOLS) + 1  # a layer per venv, then the links
    ours: Listing = {}
    our_bytes: dict[str, bytes] = {}
    for layer in entry.layers:
        listed, kept = _listing(cache.layer_path(layer.diff_id))
        ours.update(listed)
        our_bytes.update(kept)

    pip = containerci.run("pip", project.spec, project.cache)
    _, path = pip
    pips, pip_bytes = _listing(Path(path))

    activate = {"activate", "activate.csh", "activate.fish", "Activate.ps1"}
    only_pip = set(pips) - set(ours)
    # not written on the host (venv.py's docstring): the activate scripts (Debian's templates,
    # no tool needs them) and the bytecode of modules an extension module shadows
    shadowed = {n for n in only_pip if n.endswith(".pyc") and _shadowed(n, pips)}
    assert len(shadowed) > 200  # mypy's mypyc-compiled modules
    emptied = {  # a __pycache__ of shadowed modules only is not made
        n
        for n in only_pip
        if n.endswith("/__pycache__") and all(p in shadowed for p in pips if p.startswith(n + "/"))
    }
    shadowed |= emptied
    assert sorted(only_pip - shadowed) == sorted(
        f"{PREFIX}/{t}/bin/{a}" for t in TOOLS for a in activate
    )
    assert sorted(set(ours) - set(pips)) == []
    why: dict[str, str] = {}
    for name in sorted(set(ours) & set(pips)):
        if ours[name] == pips[name]:
            continue
        same_but_bytes = ours[name][:6] == pips[name][:6]
        reason = _expected(name, our_bytes.get(name, b""), pip_bytes.get(name, b""))
        assert same_but_bytes, (name, ours[name], pips[name])
        assert reason is not None, (name, ours[name], pips[name])
        why[name] = reason
    kinds = {reason.split(":")[0] for reason in why.values()}
    assert kinds <= {"INSTALLER", "RECORD", "pyc body", "launcher"}, kinds
    assert sum(1 for n in why if n.endswith((".py", ".so", "METADATA"))) == 0
    compiled = [n for n in ours if n.endswith(".pyc")]
    assert len(compiled) > 100  # the closure's modules no extension module shadows


def _shadowed(pyc: str, names: Listing) -> bool:
    """Whether the module `pyc` (…/__pycache__/m.cpython-311.pyc) is an extension module's too."""
    cached, _, file = pyc.rpartition("/__pycache__/")
    stem = file.split(".", 1)[0]
    return any(f"{cached}/{stem}{end}" in names for end in (EXTENSION, ".abi3.so"))
