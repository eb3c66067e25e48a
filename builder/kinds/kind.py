"""What a node kind is: the one Protocol every kind implements, and what each part is handed.

A kind (base, system, runtime, tools.pip, tools.npm, tools.bin, deps, or one a test
registers) is one module that answers, for the nodes of its kind, every question the stages
ask: which nodes a spec declares and what each needs (`declare`), how a node is pinned
(`lock`), how its layer is made (`build`), what it holds for the SBOM and `outdated` (`pins`),
what `check` runs to prove it works (`probes`), and the recipe version its keys hash. The
stages loop over the registry (`builder.kinds.KINDS`); none of them names a kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from builder.core.progress import Progress
from builder.core.tomlread import Table
from builder.engine.interface import Engine
from builder.engine.step import StepContext
from builder.model.lockfile import NodeKind, NodeLock
from builder.model.spec import Spec
from builder.store.cache import Cache
from builder.store.layers import LayerFile

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")  # a program name fit for a command
Inputs = Mapping[str, Any]  # a node's inputs as sandbox.lock writes them (and keys hash them)


@dataclass(frozen=True, kw_only=True)
class Declared:
    """A node a spec declares: its name and the nodes it is built on."""

    name: str
    needs: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class StepResult:
    """What building a node gives: its layers (bottom first) and the env it contributes."""

    layers: list[LayerFile]
    env: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class Distro:
    """The distribution a lock's Debian packages come from (for their package URLs)."""

    arch: str
    suite: str = ""
    vendor: str = "debian"


@dataclass(frozen=True, kw_only=True)
class Probe:
    """One program `check` runs in the image, in the agent's login shell, as a stranger uid."""

    check: str  # what the report calls it, e.g. "runtime.node" or "tools.npm tsc"
    argv: tuple[str, ...]
    tool: bool = False  # run as `argv --version`, else `argv --help`
    version: str | None = None  # what it must report: the lock's pin (an agent CLI)


@dataclass(frozen=True, kw_only=True)
class Finder:
    """Executables `check` finds in the image and runs as tools, reported as `label <exe>`:
    every entry of `folder`, owned by the first folder its link points into (a pip tool's
    venv). Each of `owners` must have one; an owner's own program (named like it) must pass,
    the others it brings only warn."""

    label: str
    folder: str
    owners: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Probes:
    """What a node asks `check` to prove: programs to run, executables to find and run, and
    names too odd to put in a command (`refused`, each a failed check)."""

    run: list[Probe] = field(default_factory=list)
    find: list[Finder] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


class LockContext(Protocol):
    """What locking one node of one platform is handed (`builder.lock.locking`)."""

    @property
    def spec(self) -> Spec: ...

    @property
    def platform(self) -> str: ...

    @property
    def progress(self) -> Progress: ...

    @property
    def cache(self) -> Cache: ...

    @property
    def update(self) -> list[str] | None:
        """None: keep every pin; []: re-resolve all; else re-resolve what these name."""
        ...

    @property
    def nodes(self) -> Mapping[str, NodeLock]:
        """The nodes locked so far on this platform (parents first)."""
        ...

    @property
    def previous(self) -> Mapping[str, NodeLock]:
        """The old lock's nodes of this platform."""
        ...

    @property
    def foreign(self) -> bool:
        """Whether `platform` is not this machine's (its resolvers run as this machine's)."""
        ...

    def engine(self) -> Engine:
        """The engine resolvers run their containers in."""
        ...

    def wanted(self, name: str, contents: list[str]) -> bool:
        """Whether `--update` asks to re-resolve node `name`, which holds `contents`."""
        ...

    def kept(self, name: str, requested: Inputs, contents: list[str]) -> Inputs | None:
        """The old inputs of `name` if they answer the same `requested` and no update asks."""
        ...

    def runtime_version(self, runtime: str) -> str:
        """The version of `runtime` (python, node) the image of the nodes locked so far has."""
        ...

    def same_as_host(self, runtime: str, version: str) -> None:
        """Refuse (ResolutionError) to resolve for a foreign platform whose `runtime` is not
        this machine's version; nothing when the platform is this machine's."""
        ...

    def stage(self, names: list[str]) -> str:
        """The image of locked nodes `names` stacked (this machine's), built where needed."""
        ...

    def context(self, name: str) -> StepContext:
        """A step context whose stage is `name`'s parents stacked: where its resolver runs."""
        ...

    def watch(self, name: str) -> AbstractContextManager[None]:
        """The heartbeat of a resolver step of `name` running in a container."""
        ...


class Kind(Protocol):
    """One kind of node. Register it once (`builder.kinds.KINDS.register`); nothing else.

    `recipe` is hashed into every key of the kind (bump it when what `build` writes changes,
    keeping the old one first in `previous`, so a lock keyed with it is re-keyed, not refused).
    """

    @property
    def name(self) -> str:
        """ "tools.npm"; for a kind of many nodes, the prefix of their names: "tools.bin"."""
        ...

    @property
    def stack(self) -> NodeKind:
        """Where its layers sit in the image, and the lock's `kind` of its nodes."""
        ...

    @property
    def recipe(self) -> str:
        """The recipe version its keys hash, e.g. "tools/2"."""
        ...

    @property
    def previous(self) -> tuple[str, ...]:
        """Its earlier recipe versions, newest first."""
        ...

    @property
    def table(self) -> str | None:
        """The sandbox.toml table it reads (dotted, "tools.gem") when it is none of the
        built-in ones `model/specfile.py` reads; `Spec.declared[table]` holds what `read`
        gave."""
        ...

    def read(self, table: Table, project: Path) -> Any:
        """Its table read and checked: a SpecError naming file and key when it is wrong."""
        ...

    def owns(self, node: str) -> bool:
        """Whether node name `node` is one of this kind's."""
        ...

    def declare(self, spec: Spec) -> list[Declared]:
        """The nodes of this kind `spec` declares, each with the nodes it is built on."""
        ...

    def prefix(self, node: str) -> str | None:
        """The one folder the node's layer may write, None if it owns `/` (DESIGN.md §3)."""
        ...

    def lock(self, ctx: LockContext, name: str) -> Inputs:
        """Node `name`'s inputs: kept from the old lock where they answer the spec, else
        resolved. Raises ResolutionError (naming sandbox.toml and the key) when it cannot."""
        ...

    def typed(self, node: NodeLock, where: str = "sandbox.lock: ") -> Any:
        """The node's inputs read into this kind's dataclass; a LockError names `where` (the
        lock file), the node and the bad key."""
        ...

    def build(self, ctx: StepContext, node: NodeLock) -> StepResult:
        """The node's layers, made from its locked inputs only, stored in `ctx.cache`.
        Raises BuildError when what got installed is not what the lock says."""
        ...

    def needs_stage(self, node: NodeLock) -> bool:
        """Whether `build` may use the node's parents: run a container of them
        (`ctx.stage`) or read their layers (`ctx.below`). False promises that the layers it
        makes depend on neither, so the executor starts it without waiting for its parents
        (the image still stacks it where `stack` says); should it need them after all, its
        `ctx.stage` waits for them."""
        ...

    def placement(self, node: NodeLock) -> list[str]:
        """Where the node's layers are made, one line per part that is not made the kind's
        usual way, for `build --explain`: "typescript: assembled on the host", "esbuild: in a
        container: esbuild has install scripts (hasInstallScript)". Empty for kinds with one
        way of building."""
        ...

    def pins(self, node: NodeLock, distro: Distro) -> Iterator[tuple[str, dict[str, Any]]]:
        """(identity, SBOM package fields) of each pin the node holds; identities unique."""
        ...

    def probes(self, node: NodeLock, spec: Spec) -> Probes:
        """What `check` runs to prove the node's programs work in the image."""
        ...

    def env(self, node: NodeLock) -> dict[str, str]:
        """What the node adds to the image's env beyond its layers' own (which `build`
        records with them)."""
        ...


def prefix_of(name: str) -> str:
    """The one folder node `name` may write to (DESIGN.md §3), for kinds that do not own `/`:
    `tools.npm` -> /opt/sandbox/tools/npm/."""
    return "/opt/sandbox/" + name.replace(".", "/") + "/"


class KindBase:
    """What most kinds share: one node named `name` (or, with `many`, nodes `name.<x>`) under
    its own prefix, inputs read into `inputs`, no pins and no probes unless overridden."""

    name: str
    stack: NodeKind
    recipe: str
    previous: tuple[str, ...] = ()
    inputs: type[Any]  # its locked inputs' dataclass, read by model.typed.read_inputs
    many: bool = False
    table: str | None = None  # the built-in kinds' tables are read by model/specfile.py

    def read(self, table: Table, project: Path) -> Any:
        msg = f"{self.name} reads no table of its own"
        raise NotImplementedError(msg)

    def owns(self, node: str) -> bool:
        return node.startswith(self.name + ".") if self.many else node == self.name

    def prefix(self, node: str) -> str | None:
        return prefix_of(node)

    def typed(self, node: NodeLock, where: str = "sandbox.lock: ") -> Any:
        return node.inputs_as(self.inputs, where)

    def needs_stage(self, node: NodeLock) -> bool:
        return True

    def placement(self, node: NodeLock) -> list[str]:
        return []

    def pins(self, node: NodeLock, distro: Distro) -> Iterator[tuple[str, dict[str, Any]]]:
        return iter(())

    def probes(self, node: NodeLock, spec: Spec) -> Probes:
        return Probes()

    def env(self, node: NodeLock) -> dict[str, str]:
        return {}
