"""A pip tool's venv laid out on the host, as `python3 -m venv --without-pip` and pip make it
in the image, with pypa's `installer` installing the wheels.

The layout is the one Debian's python3.X writes (checked file by file against a venv built in
a container, tests/integration/test_piptree.py):

- `pyvenv.cfg`: `home` (the folder of `python3` on PATH), `include-system-site-packages =
  false`, `version` (X.Y.Z), `executable` (the real interpreter), `command` (the venv command
  as run by the container recipe);
- `bin/python3` -> the image's `python3`, `bin/python` and `bin/python3.X` -> `python3`
  (Debian's venv links them so; upstream's links `python` to the interpreter);
- `include/python3.X/`, `lib/python3.X/site-packages/`, and `lib64` -> `lib` on a 64-bit
  platform (venv makes it when `sys.maxsize > 2**32`);
- each wheel installed by `installer` into the venv's scheme (purelib and platlib the
  site-packages, scripts `bin`, data the venv, headers `include/site/python3.X/<name>`):
  RECORD, console-script launchers whose `#!` is the venv's `bin/python` as the image sees it,
  `INSTALLER` naming sandbox-builder, `REQUESTED` (pip writes it for every package of a
  `-r` file);
- every .py of site-packages compiled to `__pycache__/*.cpython-3X.pyc` with checked-hash
  invalidation (what pip's compileall writes when SOURCE_DATE_EPOCH is set, as it is in the
  container step), its file name in tracebacks the image's path, by this host's python
  (`python.compile_refusal` says when it cannot) in a fresh process (`_compile` says why);
  but a module an extension module beside it shadows (`checker.py` next to
  `checker.cpython-311-x86_64-linux-gnu.so`, as mypyc-compiled wheels ship them): Python's
  importer tries extension modules first, so that bytecode is never read. pip compiles it
  anyway; for mypy that is 232 files, 7.5 MB, a tenth of its venv (the .py stays, for
  tracebacks and readers).

Not written: the activate scripts (`activate`, `.csh`, `.fish`, `Activate.ps1`). They are
templates of the image's own venv module, which may differ from this host's (Debian patches
them); no tool runs them, and an agent runs the tools by their links on PATH.

Files are 644, or 755 when the wheel marks them executable; folders 755; whatever the umask
or the folder the tree is laid in (`normalize_modes`), so the layer's bytes depend on the lock.
"""

from __future__ import annotations

import errno
import importlib.metadata
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile

from builder.core import space
from builder.core.errors import BuildError
from builder.model.toolinputs import ImagePython

INSTALLER = b"sandbox-builder\n"
_SCRIPTS = "../../../bin/"  # where a venv's RECORD puts its scripts, from site-packages


@dataclass(frozen=True, kw_only=True)
class Venv:
    """What a laid venv holds: the tool's executables (for PIP_PREFIX/bin) and every
    distribution installed, normalized name -> version."""

    executables: tuple[str, ...]
    installed: dict[str, str]


def lay_venv(
    *,
    root: Path,
    venv: str,
    tool: str,
    python: ImagePython,
    wheels: Sequence[Path],
    arch64: bool,
) -> Venv:
    """Lay the venv of `tool` whose image path is `venv` under `root` (the image's `/`),
    installing `wheels` (files named as their wheels are)."""
    here = root / venv.strip("/")
    lib = f"lib/python{python.minor}"
    for folder in ("bin", f"include/python{python.minor}", f"{lib}/site-packages"):
        (here / folder).mkdir(parents=True, exist_ok=True)
    if arch64:
        (here / "lib64").symlink_to("lib")
    (here / "bin" / "python3").symlink_to(python.command)
    for name in ("python", f"python{python.minor}"):
        (here / "bin" / name).symlink_to("python3")
    (here / "pyvenv.cfg").write_text(pyvenv_cfg(python, venv))
    site = f"{venv}/{lib}/site-packages"
    for wheel in wheels:
        _install(root, venv, site, python, wheel)
    _compile(root, site)
    return Venv(
        executables=tuple(_executables(root / site.strip("/"), tool)),
        installed=_installed(root / site.strip("/")),
    )


def pyvenv_cfg(python: ImagePython, venv: str) -> str:
    """What `python3 -m venv --without-pip <venv>` writes with the image's python."""
    home = python.command.rpartition("/")[0]
    return (
        f"home = {home}\n"
        "include-system-site-packages = false\n"
        f"version = {python.version}\n"
        f"executable = {python.executable}\n"
        f"command = {python.command} -m venv --without-pip {venv}\n"
    )


def _install(root: Path, venv: str, site: str, python: ImagePython, wheel: Path) -> None:
    with WheelFile.open(wheel) as source:
        scheme = {
            "purelib": site,
            "platlib": site,
            "headers": f"{venv}/include/site/python{python.minor}/{source.distribution}",
            "scripts": f"{venv}/bin",
            "data": venv,
        }
        destination = SchemeDictionaryDestination(
            scheme,
            interpreter=f"{venv}/bin/python",
            script_kind="posix",
            destdir=str(root),
        )
        try:
            install(source, destination, {"INSTALLER": INSTALLER, "REQUESTED": b""})
        except (ValueError, FileExistsError, KeyError) as exc:
            msg = (
                f"tools.pip: installing {wheel.name} into {venv} failed: {exc}. The wheel "
                "is damaged or clashes with another of the closure; run `sandbox lock "
                "--update tools.pip`"
            )
            raise BuildError(msg) from exc


# Run by a fresh `python -I -S` with PYTHONHASHSEED=0: every .py under site-packages compiled
# as pip does (quietly skipping what does not compile, such as test data in another Python's
# syntax), with checked hashes, named in tracebacks by its path in the image; but the modules
# an extension module of this minor version (any platform: the wheels are the lock's) shadows.
_COMPILE = r"""
import os, py_compile, sys
root, base = sys.argv[1:3]
tag = ".cpython-%d%d-" % sys.version_info[:2]

def shadowed(stem, names):
    ends = [n[len(stem):] for n in names if n.startswith(stem + ".") and n.endswith(".so")]
    return any(e in (".so", ".abi3.so") or e.startswith(tag) for e in ends)

for folder, dirs, files in os.walk(base):
    dirs.sort()
    for name in sorted(files):
        if name.endswith(".py") and not shadowed(name[:-3], files):
            path = os.path.join(folder, name)
            image_path = "/" + os.path.relpath(path, root)
            try:
                py_compile.compile(path, dfile=image_path, doraise=True,
                    invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
            except (py_compile.PyCompileError, SyntaxError, ValueError):
                pass
"""


def _compile(root: Path, site: str) -> None:
    """Byte-compile the venv's site-packages in a fresh interpreter (`_COMPILE`), not in this
    process: marshal marks the objects it writes by their reference counts, which depend on
    what the process has imported and interned (13 of 842 files came out otherwise when
    compiled in a process that had imported more). From a fresh `-I -S` process with a fixed
    hash seed, CPython 3.11.2 (Debian's) and 3.11.7 wrote the very same bytes for all 1037
    files tried (mypy, networkx, docker, rich, ...): the bytes are the minor version's, whose
    magic number the key holds, not the patch release's."""
    env = {"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "")}
    base = root / site.strip("/")
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _COMPILE, str(root), str(base)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        if space.says_full(done.stderr):  # the caller names the full disk (space.room_for)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(base))
        msg = f"tools.pip: byte-compiling {base} failed: {done.stderr.strip()[-500:]}"
        raise BuildError(msg)


def _executables(site: Path, tool: str) -> list[str]:
    """What the container recipe links for `tool` (its `_LINK_AND_LIST`): the scripts its
    RECORD puts in bin, then its console_scripts entry points not among them."""
    dist = _distribution(site, tool)
    scripts = [str(f) for f in dist.files or [] if str(f).startswith(_SCRIPTS)]
    exes = sorted({s.rsplit("/", 1)[1] for s in scripts})
    entry = [ep.name for ep in dist.entry_points if ep.group == "console_scripts"]
    return exes + sorted(set(entry) - set(exes))


def _distribution(site: Path, tool: str) -> importlib.metadata.Distribution:
    for dist in importlib.metadata.distributions(path=[str(site)]):
        if normalize(dist.metadata["Name"]) == normalize(tool):
            return dist
    msg = f"tools.pip: {tool}'s venv holds no {tool} distribution; its lock closure lacks it"
    raise BuildError(msg)


def _installed(site: Path) -> dict[str, str]:
    return {
        normalize(d.metadata["Name"]): d.version
        for d in importlib.metadata.distributions(path=[str(site)])
    }


def normalize(name: str) -> str:
    """A distribution name as the lock writes it (PEP 503)."""
    return name.lower().replace("_", "-").replace(".", "-")


def normalize_modes(top: Path) -> None:
    """Folders 755, files 755 when their owner may run them else 644, under `top`: what
    the tree would be under umask 022, whatever the umask of this process."""
    for folder, dirs, files in os.walk(top):
        Path(folder).chmod(0o755)
        for name in dirs + files:
            path = Path(folder) / name
            if path.is_symlink() or path.is_dir():
                continue
            path.chmod(0o755 if path.stat().st_mode & 0o100 else 0o644)
