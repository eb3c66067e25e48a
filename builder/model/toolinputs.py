"""The typed inputs of the tools and deps nodes (the rest, and the contract: model/inputs.py).

- tools.pip: `PipToolsInputs` (each tool's requirement and wheel closure)
- tools.npm: `NpmToolsInputs` (the tools asked for and npm's package-lock pins)
- tools.bin.<name>: `BinToolInputs` (one download or project file by sha256)
- deps.<name>: `DepsInputs` (a project's manager, mode, files and pins)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from builder.model.fields import Fields
from builder.model.inputs import Inputs, Pin
from builder.model.spec import DepManager, DepMode


@dataclass(frozen=True, kw_only=True)
class PipTool:
    requirement: str
    packages: tuple[Pin, ...]


@dataclass(frozen=True, kw_only=True)
class PipToolsInputs:
    python: str  # the python version the closures were resolved for
    tools: Mapping[str, PipTool]

    @classmethod
    def of(cls, f: Fields) -> PipToolsInputs:
        table = f.table("tools")
        tools = {}
        for name in table.data:
            tool = table.table(name)
            tools[name] = PipTool(
                requirement=tool.text("requirement"),
                packages=tuple(Pin.of(p) for p in tool.tables("packages")),
            )
        return cls(python=f.text("python"), tools=tools)

    def to_inputs(self) -> Inputs:
        tools = {
            name: {
                "requirement": tool.requirement,
                "packages": [p.to_inputs() for p in tool.packages],
            }
            for name, tool in self.tools.items()
        }
        return {"python": self.python, "tools": tools}


@dataclass(frozen=True, kw_only=True)
class NpmPackage:
    """One package-lock entry: its install path and npm's fields (managers.NPM_FIELDS), as
    npm wrote them."""

    path: str
    fields: Mapping[str, Any]

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

    def to_inputs(self) -> Inputs:
        return {"path": self.path, **self.fields}


@dataclass(frozen=True, kw_only=True)
class NpmToolsInputs:
    node: str  # the node version npm resolved on
    tools: tuple[str, ...]  # the specs of [tools].npm, as written
    packages: tuple[NpmPackage, ...]

    @classmethod
    def of(cls, f: Fields) -> NpmToolsInputs:
        packages = []
        for item in f.tables("packages"):
            fields = {k: v for k, v in item.data.items() if k != "path"}
            packages.append(NpmPackage(path=item.text("path"), fields=fields))
        return cls(node=f.text("node"), tools=f.texts("tools"), packages=tuple(packages))

    def to_inputs(self) -> Inputs:
        return {
            "node": self.node,
            "tools": list(self.tools),
            "packages": [p.to_inputs() for p in self.packages],
        }


@dataclass(frozen=True, kw_only=True)
class BinRequest:
    """What `[tools.bin.<name>]` asked ("" for what it left out)."""

    version: str
    url: str
    path: str
    bin: str
    auth_env: str
    file_sha256: str | None = None  # absent from locks made before it was recorded

    def to_inputs(self) -> Inputs:
        found: Inputs = {
            "version": self.version,
            "url": self.url,
            "path": self.path,
            "bin": self.bin,
            "auth_env": self.auth_env,
        }
        if self.file_sha256 is not None:
            found["file_sha256"] = self.file_sha256
        return found


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

    @classmethod
    def of(cls, f: Fields) -> BinToolInputs:
        asked = f.table("requested")
        return cls(
            name=f.text("name"),
            version=f.text("version"),
            url=f.opt_text("url"),
            path=f.opt_text("path"),
            sha256=f.text("sha256"),
            format=f.text("format"),
            bin=f.text("bin"),
            requested=BinRequest(
                version=asked.text("version"),
                url=asked.text("url"),
                path=asked.text("path"),
                bin=asked.text("bin"),
                auth_env=asked.text("auth_env"),
                file_sha256=asked.opt_text("file_sha256"),
            ),
        )

    @property
    def source(self) -> str:
        """Where it comes from: its url, else its project path."""
        return self.url or self.path or ""

    def to_inputs(self) -> Inputs:
        found: Inputs = {"name": self.name, "version": self.version}
        if self.url is not None:
            found["url"] = self.url
        if self.path is not None:
            found["path"] = self.path
        return {
            **found,
            "sha256": self.sha256,
            "format": self.format,
            "bin": self.bin,
            "requested": self.requested.to_inputs(),
        }


@dataclass(frozen=True, kw_only=True)
class InstallerPin:
    """The pnpm or uv a deps node installs with (lock/resolve/installers.py)."""

    version: str
    url: str
    sha256: str
    bin: str | None = None  # pnpm's CLI script in its tarball; uv has none
    requested: str  # what chose the version ("packageManager pnpm@9.1.0", "newest" ...)

    @classmethod
    def of(cls, f: Fields) -> InstallerPin:
        return cls(
            version=f.text("version"),
            url=f.text("url"),
            sha256=f.text("sha256"),
            bin=f.opt_text("bin"),
            requested=f.text("requested"),
        )

    def to_inputs(self) -> Inputs:
        found: Inputs = {"version": self.version, "url": self.url, "sha256": self.sha256}
        if self.bin is not None:
            found["bin"] = self.bin
        return {**found, "requested": self.requested}


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
    installer: InstallerPin | None = None  # pnpm's or uv's own pin (written under its name)

    @classmethod
    def of(cls, f: Fields) -> DepsInputs:
        manager = f.choice("manager", DepManager)
        return cls(
            manager=manager,
            mode=f.choice("mode", DepMode),
            path=f.text("path"),
            files=f.text_map("files"),
            runtime=f.text("runtime"),
            mount=f.opt_text("mount"),
            requires=f.opt_texts("requires"),
            pins=tuple(Pin.of(p) for p in f.tables("pins")) if "pins" in f else None,
            installer=InstallerPin.of(f.table(manager.value)) if manager.value in f else None,
        )

    def to_inputs(self) -> Inputs:
        found: Inputs = {
            "manager": self.manager.value,
            "mode": self.mode.value,
            "path": self.path,
            "files": dict(self.files),
            "runtime": self.runtime,
        }
        if self.mount is not None:
            found["mount"] = self.mount
        if self.requires is not None:
            found["requires"] = list(self.requires)
        if self.pins is not None:
            found["pins"] = [p.to_inputs() for p in self.pins]
        if self.installer is not None:
            found[self.manager.value] = self.installer.to_inputs()
        return found
