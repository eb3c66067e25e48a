"""sandbox.toml as frozen dataclasses (DESIGN.md §2): what a spec can say.

`model.specfile.load_spec` reads and validates a file into these; everything later reads them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from builder.core.keys import canonical_bytes, content_digest

RUNTIMES = ("go", "java", "node", "python", "rust")


class Provider(StrEnum):
    """Where a runtime comes from (docs/spec.md, "Runtimes and tools")."""

    OFFICIAL = "official"  # the publisher's archive, checked against its checksums
    APT = "apt"  # Debian's package, joining the system layer
    PYPI = "pypi"  # a wheel from PyPI


class DepManager(StrEnum):
    """The package manager of a `[deps]` entry (its files: DEP_MANAGERS)."""

    PNPM = "pnpm"
    NPM = "npm"
    PIP = "pip"
    UV = "uv"


class DepMode(StrEnum):
    """How a `[deps]` entry reaches the agent (docs/spec.md, "Project dependencies")."""

    STORE = "store"  # the manager's cache warmed, so the task's frozen install runs offline
    INSTALL = "install"  # the tree installed under /opt/sandbox/deps/<name>/, on PATH
    MOUNT = "mount"  # the tree exported too, and mounted read-only at `mount`


PROVIDERS = tuple(p.value for p in Provider)
DEP_MANAGERS = {
    "pnpm": ("package.json", "pnpm-lock.yaml"),
    "npm": ("package.json", "package-lock.json"),
    "pip": ("requirements.txt",),
    "uv": ("pyproject.toml", "uv.lock"),
}
DEP_MODES = tuple(m.value for m in DepMode)
INHERITABLE = ("user", "workdir")  # [image] keys an image base's config fills in when unset


@dataclass(frozen=True, kw_only=True)
class ImageSpec:
    name: str
    registry: str | None = None
    platforms: tuple[str, ...] = ("linux/amd64",)
    user: str = "agent"
    uid: int = 1000
    workdir: str = "/workspace"
    env: dict[str, str] = field(default_factory=dict)
    allow_setuid: tuple[str, ...] = ()
    # `build --apply` refuses an image whose attestations do not verify with `public_key`
    # (a PEM file beside sandbox.toml); neither changes what is locked or built.
    require_signed: bool = False
    public_key: Path | None = None
    # The [image] keys the spec leaves out that an image base's own config may fill in
    # (`user`, `workdir`): empty with a bootstrap base, which has no config (model/inherit.py).
    inherit: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Bootstrap:
    suite: str
    mirror: str = "http://deb.debian.org/debian"
    variant: str = "minbase"


@dataclass(frozen=True, kw_only=True)
class BaseSpec:
    """Exactly one of `image` (a reference pinned by lock) or `bootstrap` (debootstrap)."""

    image: str | None = None
    bootstrap: Bootstrap | None = None


@dataclass(frozen=True, kw_only=True)
class RuntimeSpec:
    name: str
    version: str
    provider: Provider = Provider.OFFICIAL
    mirror: str | None = None


@dataclass(frozen=True, kw_only=True)
class BinaryTool:
    name: str
    version: str
    url: str | None = None
    path: str | None = None
    binary: str | None = None
    auth_env: str | None = None
    # sha256 of the `path` archive, read when the spec is loaded, so a replaced archive
    # makes the lock stale just like a changed spec does.
    file_sha256: str | None = None


@dataclass(frozen=True, kw_only=True)
class ToolsSpec:
    pip: tuple[str, ...] = ()
    npm: tuple[str, ...] = ()
    bin: tuple[BinaryTool, ...] = ()


@dataclass(frozen=True, kw_only=True)
class DepSpec:
    name: str
    manager: DepManager
    path: str
    mode: DepMode = DepMode.STORE
    mount: str | None = None
    # The manager's files in `path` (DEP_MANAGERS) -> their sha256, read when the spec is
    # loaded: they are part of what `lock` resolves, so changing one makes the lock stale.
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class SandboxSpec:
    """The orchestrator settings copied into the overlay (DESIGN.md §7)."""

    gvisor: bool = False
    egress_allowlist: tuple[str, ...] = ()
    env_passthrough: tuple[str, ...] = ()
    extra_mounts: tuple[str, ...] = ()
    network: str | None = None
    no_new_privileges: bool | None = None
    drop_capabilities: bool | None = None  # Risoluto: true -> --cap-drop=ALL
    seccomp_profile: str | None = None
    resources: dict[str, str] = field(default_factory=dict)
    logs: dict[str, str | int] = field(default_factory=dict)  # driver, max_size, max_file


@dataclass(frozen=True, kw_only=True)
class Spec:
    path: Path
    image: ImageSpec
    base: BaseSpec
    system_packages: tuple[str, ...] = ()
    system_docs: bool = False  # keep documentation, man pages and translations
    runtimes: tuple[RuntimeSpec, ...] = ()
    tools: ToolsSpec = field(default_factory=ToolsSpec)
    deps: tuple[DepSpec, ...] = ()
    sandbox: SandboxSpec = field(default_factory=SandboxSpec)
    # The tables of kinds registered beyond the built-in ones (model/tables.py), as read.
    declared: dict[str, Any] = field(default_factory=dict)

    @property
    def project_dir(self) -> Path:
        return self.path.parent

    def files(self) -> list[Path]:
        """Every file the spec was read from: sandbox.toml and the project files it hashes."""
        project = self.project_dir
        found = [self.path]
        found += [project / dep.path / name for dep in self.deps for name in dep.files]
        found += [project / bt.path for bt in self.tools.bin if bt.path]
        return found

    def locking_inputs(self) -> dict[str, Any]:
        """The parts of the spec that change what `lock` resolves or the node keys it writes."""
        data = asdict(self)
        for unrelated in ("path", "sandbox"):
            del data[unrelated]
        for unrelated in ("name", "registry", "env", "require_signed", "public_key"):
            del data["image"][unrelated]
        if self.base.bootstrap:  # nothing to inherit; keeps bootstrap specs' hashes as they were
            del data["image"]["inherit"]
        if not self.system_docs:  # hashed only when set: specs without it keep their hashes
            del data["system_docs"]
        if not self.declared:  # the same: specs of built-in kinds only keep their hashes
            del data["declared"]
        return data

    def spec_hash(self) -> str:
        return content_digest(canonical_bytes(self.locking_inputs()))
