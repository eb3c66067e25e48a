"""The typed inputs of the tools and deps nodes (the rest, and the contract: model/inputs.py).

- tools.pip: `PipToolsInputs` (each tool's requirement and wheel closure, the image's python)
- tools.npm: `NpmToolsInputs` (the tools asked for and npm's package-lock pins)
- tools.bin.<name>: `BinToolInputs` (one download or project file by sha256)
- deps.<name>: `DepsInputs` (a project's manager, mode, files and pins)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from builder.model.inputs import Pin
from builder.model.spec import DepManager, DepMode
from builder.model.typed import REST, key_from


@dataclass(frozen=True, kw_only=True)
class WheelPin(Pin):
    """A package of a pip tool's closure: its version, and the file pip chose with its sha256
    (`url` is absent from locks made before host assembly needed it)."""

    url: str | None = None


@dataclass(frozen=True, kw_only=True)
class PipTool:
    requirement: str
    packages: tuple[WheelPin, ...]


@dataclass(frozen=True, kw_only=True)
class ImagePython:
    """The python3 the image makes venvs with, as the lock knows it (kinds/pip/python.py)."""

    command: str  # how `python3` is found on PATH: /usr/bin/python3
    executable: str  # its real file: /usr/bin/python3.11
    version: str  # X.Y.Z, as pyvenv.cfg's `version` says

    @property
    def minor(self) -> str:
        """`3.11`: the lib/python3.X folder and the interpreter's bytecode."""
        return ".".join(self.version.split(".")[:2])


@dataclass(frozen=True, kw_only=True)
class PipToolsInputs:
    python: str  # the python version the closures were resolved for
    tools: Mapping[str, PipTool]
    interpreter: ImagePython | None = None  # absent: the lock cannot say (a container builds)


@dataclass(frozen=True, kw_only=True)
class NpmPackage:
    """One package-lock entry: its install path and npm's fields (managers.NPM_FIELDS), as
    npm wrote them."""

    path: str
    fields: Mapping[str, Any] = field(metadata=REST)  # every other key of the entry

    @property
    def version(self) -> str | None:
        value = self.fields.get("version")
        return value if isinstance(value, str) else None

    @property
    def bin(self) -> str | Mapping[str, str]:
        """The executables it installs: package-lock's `bin`, a table of name -> script, or
        one script (the package's own name is the command)."""
        value = self.fields.get("bin")
        return value if isinstance(value, str | dict) else {}


@dataclass(frozen=True, kw_only=True)
class NpmToolsInputs:
    node: str  # the node version npm resolved on
    tools: tuple[str, ...]  # the specs of [tools].npm, as written
    packages: tuple[NpmPackage, ...]


@dataclass(frozen=True, kw_only=True)
class BinRequest:
    """What `[tools.bin.<name>]` asked ("" for what it left out)."""

    version: str
    url: str
    path: str
    bin: str
    auth_env: str
    file_sha256: str | None = None  # absent from locks made before it was recorded


@dataclass(frozen=True, kw_only=True)
class BinToolInputs:
    """One executable (or an archive holding it) from `url` or the project's `path`."""

    name: str
    version: str
    url: str | None = None
    path: str | None = None
    sha256: str
    format: str  # "raw" for a bare executable, else the archive's (lock/bins.py)
    bin: str
    requested: BinRequest

    @property
    def source(self) -> str:
        """Where it comes from: its url, else its project path."""
        return self.url or self.path or ""


@dataclass(frozen=True, kw_only=True)
class InstallerPin:
    """The pnpm or uv a deps node installs with (lock/resolve/installers.py)."""

    version: str
    url: str
    sha256: str
    bin: str | None = None  # pnpm's CLI script in its tarball; uv has none
    requested: str  # what chose the version ("packageManager pnpm@9.1.0", "newest" ...)


@dataclass(frozen=True, kw_only=True)
class DepsInputs:
    """A `[deps]` project: its files by sha256, the runtime version, and what pins it."""

    manager: DepManager
    mode: DepMode
    path: str
    files: Mapping[str, str]  # the manager's files in `path` -> sha256
    runtime: str
    mount: str | None = None
    requires: tuple[str, ...] | None = None  # a plain requirements.txt: the names it lists
    pins: tuple[Pin, ...] | None = None  # ... and the closure they resolve to
    # pnpm's or uv's own pin, under the manager's name
    installer: InstallerPin | None = field(default=None, metadata=key_from("manager"))
