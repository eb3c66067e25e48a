"""A node's locked inputs, typed: one frozen dataclass per kind of node (DESIGN.md §4).

sandbox.lock keeps each node's inputs as a table, and that table (a dict) is what is hashed
into the node's key and written back: `read_inputs(cls, fields)` (model/typed.py) reads one
from the lock's dict, refusing a damaged one with a LockError that names file, node and key;
`write_inputs(obj)` gives back the very same dict (same keys, same values, pins in the same
order), so no key and no lock byte depends on these classes. A field's name is its lock key
and its annotation its type. The stages after `lock` read these, never the dict.

- base: `BootstrapBase` (debootstrap) or `ImageBase` (an image pinned by digest or ID)
- system: `SystemInputs`; runtime.<name>: `RuntimeInputs`
- tools.pip: `PipToolsInputs`; tools.npm: `NpmToolsInputs`; tools.bin.<name>: `BinToolInputs`
- deps.<name>: `DepsInputs`
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from builder.model.spec import Provider
from builder.model.typed import Variants


@dataclass(frozen=True, kw_only=True)
class Pin:
    """A package pinned by version (a deb, a wheel); an image base's dpkg list has no sha256."""

    name: str
    version: str
    sha256: str | None = None


# -- base --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BaseInputs:
    """What every base records: its epoch (SOURCE_DATE_EPOCH) and its packages, if known."""

    variants: ClassVar[Variants]  # a bootstrap table is a BootstrapBase, any other an ImageBase
    epoch: int | None = None
    packages: tuple[Pin, ...] | None = None

    @property
    def source_epoch(self) -> int:
        return self.epoch or 0


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
    docs: bool = False  # [system].docs: keep what the slim base leaves out (written if true)


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


BaseInputs.variants = Variants(key="bootstrap", present=BootstrapBase, absent=ImageBase)


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


@dataclass(frozen=True, kw_only=True)
class RuntimeRequest:
    """What the spec asked of a runtime: a lock answering the same request keeps its pin."""

    provider: Provider
    version: str
    mirror: str  # "" for the publisher's own


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
