"""A node's locked inputs, typed: one frozen dataclass per kind of node (DESIGN.md §4).

sandbox.lock keeps each node's inputs as a table, and that table (a dict) is what is hashed
into the node's key and written back: `of(fields)` reads one from the lock's dict, refusing a
damaged one with a LockError that names file, node and key; `to_inputs()` gives back the very
same dict (same keys, same values, pins in the same order), so no key and no lock byte
depends on this module. The stages after `lock` read these, never the dict.

- base: `BootstrapBase` (debootstrap) or `ImageBase` (an image pinned by digest or ID)
- system: `SystemInputs`; runtime.<name>: `RuntimeInputs`
- tools.pip: `PipToolsInputs`; tools.npm: `NpmToolsInputs`; tools.bin.<name>: `BinToolInputs`
- deps.<name>: `DepsInputs`
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from builder.model.fields import Fields
from builder.model.spec import Provider

Inputs = dict[str, Any]  # a node's inputs as sandbox.lock writes them (and keys hash them)


@dataclass(frozen=True, kw_only=True)
class Pin:
    """A package pinned by version (a deb, a wheel); an image base's dpkg list has no sha256."""

    name: str
    version: str
    sha256: str | None = None

    @classmethod
    def of(cls, f: Fields) -> Pin:
        return cls(name=f.text("name"), version=f.text("version"), sha256=f.opt_text("sha256"))

    def to_inputs(self) -> Inputs:
        found: Inputs = {"name": self.name, "version": self.version}
        if self.sha256 is not None:
            found["sha256"] = self.sha256
        return found


def _pins(f: Fields, key: str) -> tuple[Pin, ...]:
    return tuple(Pin.of(item) for item in f.tables(key))


def _listed(pins: tuple[Pin, ...]) -> list[Inputs]:
    return [pin.to_inputs() for pin in pins]


# -- base --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BaseInputs:
    """What every base records: its epoch (SOURCE_DATE_EPOCH) and its packages, if known."""

    epoch: int | None = None
    packages: tuple[Pin, ...] | None = None

    @classmethod
    def of(cls, f: Fields) -> BaseInputs:
        return BootstrapBase.of(f) if "bootstrap" in f else ImageBase.of(f)

    @property
    def source_epoch(self) -> int:
        return self.epoch or 0

    def to_inputs(self) -> Inputs:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class BootstrapPin:
    suite: str
    mirror: str
    variant: str


@dataclass(frozen=True, kw_only=True)
class BootstrapBase(BaseInputs):
    """A base debootstrap builds: the suite and the package set it chose, each by sha256."""

    bootstrap: BootstrapPin
    packages: tuple[Pin, ...]

    @classmethod
    def of(cls, f: Fields) -> BootstrapBase:
        boot = f.table("bootstrap")
        return cls(
            bootstrap=BootstrapPin(
                suite=boot.text("suite"), mirror=boot.text("mirror"), variant=boot.text("variant")
            ),
            epoch=f.opt_integer("epoch"),
            packages=_pins(f, "packages"),
        )

    def to_inputs(self) -> Inputs:
        boot = self.bootstrap
        found: Inputs = {
            "bootstrap": {"suite": boot.suite, "mirror": boot.mirror, "variant": boot.variant}
        }
        if self.epoch is not None:
            found["epoch"] = self.epoch
        return {**found, "packages": _listed(self.packages)}


@dataclass(frozen=True, kw_only=True)
class BaseUser:
    name: str
    uid: int


@dataclass(frozen=True, kw_only=True)
class Program:
    """A program on the base's PATH (python3, node, npm)."""

    path: str
    version: str


@dataclass(frozen=True, kw_only=True)
class ImageBase(BaseInputs):
    """An image base: its reference, its pin, and what it has (lock/resolve/image.py); a base
    of another platform than this machine's records its pin only."""

    image: str
    pinned: str
    config: Mapping[str, Any] | None = None  # Docker's Config fields `FROM` acts on, as is
    os: Mapping[str, str] | None = None  # id, version_id, codename
    users: tuple[BaseUser, ...] | None = None
    programs: Mapping[str, Program] | None = None

    @classmethod
    def of(cls, f: Fields) -> ImageBase:
        users = None
        if "users" in f:
            users = tuple(
                BaseUser(name=u.text("name"), uid=u.integer("uid")) for u in f.tables("users")
            )
        programs = None
        if "programs" in f:
            table = f.table("programs")
            programs = {
                name: Program(
                    path=table.table(name).text("path"), version=table.table(name).text("version")
                )
                for name in table.data
            }
        return cls(
            image=f.text("image"),
            pinned=f.text("pinned"),
            epoch=f.opt_integer("epoch"),
            config=f.document("config") if "config" in f else None,
            os=f.text_map("os") if "os" in f else None,
            packages=_pins(f, "packages") if "packages" in f else None,
            users=users,
            programs=programs,
        )

    def to_inputs(self) -> Inputs:
        found: Inputs = {"image": self.image, "pinned": self.pinned}
        if self.epoch is not None:
            found["epoch"] = self.epoch
        if self.config is not None:
            found["config"] = dict(self.config)
        if self.os is not None:
            found["os"] = dict(self.os)
        if self.packages is not None:
            found["packages"] = _listed(self.packages)
        if self.users is not None:
            found["users"] = [{"name": u.name, "uid": u.uid} for u in self.users]
        if self.programs is not None:
            found["programs"] = {
                name: {"path": p.path, "version": p.version} for name, p in self.programs.items()
            }
        return found


# -- system and runtimes -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SystemInputs:
    """The apt closure of `[system].packages` and the user the system layer makes."""

    request: tuple[str, ...]
    user: str
    workdir: str
    uid: int | None = None  # None: the base's own user is kept
    owner: str | None = None  # chown's argument for the workdir when the base's user is kept
    allow_setuid: tuple[str, ...] | None = None  # absent from locks keyed before system/2
    docs: bool = False  # [system].docs: keep what the slim image leaves out (written if true)
    packages: tuple[Pin, ...]

    @classmethod
    def of(cls, f: Fields) -> SystemInputs:
        return cls(
            request=f.texts("request"),
            user=f.text("user"),
            workdir=f.text("workdir"),
            uid=f.opt_integer("uid"),
            owner=f.opt_text("owner"),
            allow_setuid=f.opt_texts("allow_setuid"),
            docs=f.flag("docs"),
            packages=_pins(f, "packages"),
        )

    def to_inputs(self) -> Inputs:
        found: Inputs = {"request": list(self.request), "user": self.user, "workdir": self.workdir}
        if self.uid is not None:
            found["uid"] = self.uid
        if self.owner is not None:
            found["owner"] = self.owner
        if self.allow_setuid is not None:
            found["allow_setuid"] = list(self.allow_setuid)
        if self.docs:
            found["docs"] = True
        return {**found, "packages": _listed(self.packages)}


@dataclass(frozen=True, kw_only=True)
class RuntimeRequest:
    """What the spec asked of a runtime: a lock answering the same request keeps its pin."""

    provider: Provider
    version: str
    mirror: str  # "" for the publisher's own

    def to_inputs(self) -> Inputs:
        return {"provider": self.provider.value, "version": self.version, "mirror": self.mirror}


@dataclass(frozen=True, kw_only=True)
class RuntimeInputs:
    """A runtime layer: the publisher's archive (or a PyPI wheel) by url and sha256."""

    runtime: str
    provider: Provider
    request: str
    version: str
    url: str
    sha256: str
    format: str
    root: str
    requested: RuntimeRequest

    @classmethod
    def of(cls, f: Fields) -> RuntimeInputs:
        asked = f.table("requested")
        return cls(
            runtime=f.text("runtime"),
            provider=f.choice("provider", Provider),
            request=f.text("request"),
            version=f.text("version"),
            url=f.text("url"),
            sha256=f.text("sha256"),
            format=f.text("format"),
            root=f.text("root"),
            requested=RuntimeRequest(
                provider=asked.choice("provider", Provider),
                version=asked.text("version"),
                mirror=asked.text("mirror"),
            ),
        )

    def to_inputs(self) -> Inputs:
        return {
            "runtime": self.runtime,
            "provider": self.provider.value,
            "request": self.request,
            "version": self.version,
            "url": self.url,
            "sha256": self.sha256,
            "format": self.format,
            "root": self.root,
            "requested": self.requested.to_inputs(),
        }
