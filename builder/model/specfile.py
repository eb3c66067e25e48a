"""sandbox.toml read and validated into `model.spec`'s dataclasses (DESIGN.md §2).

The whole schema is checked here, before anything is resolved or written, so a bad spec fails
with exit 2 naming the file, the key, its line and the fix. Values that end up in shell
commands (package names, versions, user names) are checked against strict patterns, so no
spec can inject a command.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from builder.core import patterns
from builder.core.errors import SpecError
from builder.core.tomlread import Source, Table, read_toml
from builder.model import resources, tables
from builder.model.spec import (
    DEP_MANAGERS,
    DEP_MODES,
    INHERITABLE,
    PROVIDERS,
    RUNTIMES,
    BaseSpec,
    BinaryTool,
    Bootstrap,
    DepManager,
    DepMode,
    DepSpec,
    ImageSpec,
    Provider,
    RuntimeSpec,
    SandboxSpec,
    Spec,
    ToolsSpec,
)


def load_spec(path: Path) -> Spec:
    """Read and validate sandbox.toml at `path`."""
    if not path.exists():
        msg = (
            f"{path}: file not found (without -f, commands use the first sandbox.toml in the "
            "current folder or a parent, up to the repository root). Run `sandbox init` to "
            "write one, or pass -f PATH"
        )
        raise SpecError(msg)
    data, text = read_toml(path, SpecError)
    root = Table(data=data, path="", source=Source(path=path, text=text, error=SpecError))
    extra = tables.readers()
    root.check_keys(
        ["image", "base", "system", "runtimes", "tools", "deps", "sandbox"]
        + [name.split(".")[0] for name in extra]
    )
    image_table = root.table("image", required=True)
    base_table = root.table("base", required=True)
    assert image_table is not None
    assert base_table is not None
    system = root.table("system")
    if system:
        system.check_keys(["packages", "docs"])
    base = _base(base_table)
    image = _image(image_table, path.parent)
    if base.image:
        image = replace(image, inherit=tuple(k for k in INHERITABLE if k not in image_table.data))
    return Spec(
        path=path,
        image=image,
        base=base,
        system_packages=system.str_list("packages", check=patterns.apt_package) if system else (),
        system_docs=system.boolean("docs", default=False) if system else False,
        runtimes=_runtimes(root.table("runtimes")),
        tools=_tools(root.table("tools"), path.parent, extra),
        deps=_deps(root.table("deps"), path.parent),
        sandbox=_sandbox(root.table("sandbox")),
        declared=_declared(root, path.parent, extra),
    )


def _image(t: Table, folder: Path) -> ImageSpec:
    t.check_keys(
        [
            *("name", "registry", "platforms", "user", "workdir", "env", "allow_setuid"),
            *("require_signed", "public_key"),
        ]
    )
    user = t.string("user", default="agent", check=patterns.user_name)
    require_signed = t.boolean("require_signed", default=False)
    public_key = t.optional_string("public_key")
    if require_signed and not public_key:
        t.source.fail(
            "image.require_signed",
            "needs the public key the attestations must verify with",
            'Add `public_key = "signing.pub"` (a PEM file, relative to sandbox.toml) to [image]',
        )
    return ImageSpec(
        require_signed=require_signed,
        public_key=folder / public_key if public_key else None,
        name=t.string("name", check=patterns.repository),
        registry=t.optional_string("registry", check=patterns.registry),
        platforms=t.str_list("platforms", check=patterns.platform) or ("linux/amd64",),
        user=user,
        workdir=t.string("workdir", default="/workspace", check=patterns.abs_path),
        env=t.str_map("env", check_key=patterns.env_name),
        allow_setuid=t.str_list("allow_setuid", check=patterns.abs_path),
    )


def _base(t: Table) -> BaseSpec:
    t.check_keys(["image", "bootstrap"])
    if ("image" in t.data) == ("bootstrap" in t.data):
        t.source.fail(
            "base",
            "needs exactly one of `image` or `bootstrap`",
            'Write `image = "debian:bookworm-slim"` or `bootstrap = { suite = "bookworm" }`',
        )
    if "image" in t.data:
        return BaseSpec(image=t.string("image", check=patterns.image_ref))
    boot = t.table("bootstrap")
    assert boot is not None
    boot.check_keys(["suite", "mirror", "variant"])
    variant = boot.string("variant", default="minbase")
    if variant not in ("minbase", "buildd"):
        boot.source.fail(boot.key("variant"), f"{variant!r} is not supported", "Use minbase")
    return BaseSpec(
        bootstrap=Bootstrap(
            suite=boot.string("suite", check=patterns.suite),
            mirror=boot.string("mirror", default=Bootstrap.mirror, check=patterns.http_url),
            variant=variant,
        )
    )


def _runtimes(t: Table | None) -> tuple[RuntimeSpec, ...]:
    if t is None:
        return ()
    t.check_keys(RUNTIMES)
    found = []
    for name in sorted(t.data):
        if isinstance(t.data[name], str):
            version = t.string(name, check=patterns.runtime_version)
            found.append(RuntimeSpec(name=name, version=version))
            continue
        if not isinstance(t.data[name], dict):
            t.source.fail(
                t.key(name),
                "must be a quoted version or a table",
                f'Write {name} = "22" or {name} = {{ version = "22", provider = "official" }}',
            )
        rt = t.table(name)
        assert rt is not None
        rt.check_keys(["version", "provider", "mirror"])
        provider = rt.string("provider", default="official")
        if provider not in PROVIDERS:
            rt.source.fail(
                rt.key("provider"), f"{provider!r} is not a provider", f"Use one of {PROVIDERS}"
            )
        found.append(
            RuntimeSpec(
                name=name,
                version=rt.string("version", check=patterns.runtime_version),
                provider=Provider(provider),
                mirror=rt.optional_string("mirror", check=patterns.http_url),
            )
        )
    return tuple(found)


def _tools(t: Table | None, project: Path, extra: Mapping[str, object]) -> ToolsSpec:
    if t is None:
        return ToolsSpec()
    t.check_keys(["pip", "npm", "bin"] + [n.split(".", 1)[1] for n in extra if "." in n])
    pip = t.str_list("pip", check=patterns.pip_requirement)
    npm = t.str_list("npm", check=patterns.npm_spec)
    for manager, specs, name_of in (
        ("pip", pip, patterns.pip_name),
        ("npm", npm, patterns.npm_name),
    ):
        names = [name_of(s) for s in specs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            t.source.fail(t.key(manager), f"{twice[0]!r} is listed twice", "Keep one entry")
    return ToolsSpec(pip=pip, npm=npm, bin=_binaries(t.table("bin"), project))


def _declared(
    root: Table, project: Path, extra: Mapping[str, tables.TableReader]
) -> dict[str, Any]:
    """The tables of registered kinds (model/tables.py) that sandbox.toml has, each read."""
    found: dict[str, Any] = {}
    for name, reader in sorted(extra.items()):
        table: Table | None = root
        for part in name.split("."):
            table = table.table(part) if table is not None else None
        if table is not None:
            found[name] = reader(table, project)
    return found


def _binaries(t: Table | None, project: Path) -> tuple[BinaryTool, ...]:
    if t is None:
        return ()
    tools = []
    for name in sorted(t.data):
        problem = patterns.tool_name(name)
        if problem:
            t.source.fail(t.key(name), f"{name!r} {problem}", "")
        bt = t.table(name)
        assert bt is not None
        bt.check_keys(["version", "url", "path", "bin", "auth_env"])
        if ("url" in bt.data) == ("path" in bt.data):
            bt.source.fail(bt.path, "needs exactly one of `url` or `path`", "")
        rel = bt.optional_string("path", check=patterns.relative_path)
        tools.append(
            BinaryTool(
                name=name,
                version=bt.string("version", check=patterns.loose_version),
                url=bt.optional_string("url", check=patterns.download_url),
                path=rel,
                binary=bt.optional_string("bin", check=patterns.tool_name),
                auth_env=bt.optional_string("auth_env", check=patterns.env_name),
                file_sha256=_project_file_sha256(bt, project, rel) if rel else None,
            )
        )
    return tuple(tools)


def _deps(t: Table | None, project: Path) -> tuple[DepSpec, ...]:
    if t is None:
        return ()
    found = []
    for name in sorted(t.data):
        problem = patterns.tool_name(name)
        if problem:
            t.source.fail(t.key(name), f"{name!r} {problem}", "")
        dt = t.table(name)
        assert dt is not None
        dt.check_keys(["manager", "path", "mode", "mount"])
        manager = dt.string("manager")
        if manager not in DEP_MANAGERS:
            dt.source.fail(
                dt.key("manager"),
                f"{manager!r} is not supported",
                f"Use one of {list(DEP_MANAGERS)}",
            )
        mode = dt.string("mode", default="store")
        if mode not in DEP_MODES:
            dt.source.fail(dt.key("mode"), f"{mode!r} is not a mode", f"Use one of {DEP_MODES}")
        rel = dt.string("path", check=patterns.relative_path)
        _check_project_files(dt, project, rel, DEP_MANAGERS[manager])
        found.append(
            DepSpec(
                name=name,
                manager=DepManager(manager),
                path=rel,
                mode=DepMode(mode),
                mount=dt.optional_string("mount", check=patterns.abs_path),
                files={
                    f: hashlib.sha256((project / rel / f).read_bytes()).hexdigest()
                    for f in DEP_MANAGERS[manager]
                },
            )
        )
    return tuple(found)


def _project_file_sha256(t: Table, project: Path, rel: str) -> str:
    """sha256 of a project file a tool is built from; the file must exist inside the project."""
    try:
        path = (project / rel).resolve()
        if not path.is_relative_to(project.resolve()):
            t.source.fail(
                t.key("path"), f"{rel!r} leaves the project", "Keep it inside the project"
            )
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        t.source.fail(
            t.key("path"),
            f"{rel!r} cannot be read ({exc.strerror})",
            "Put the archive there or fix the path",
        )


def _check_project_files(t: Table, project: Path, rel: str, needed: tuple[str, ...]) -> None:
    try:
        folder = (project / rel).resolve()
        if not folder.is_relative_to(project.resolve()):
            t.source.fail(
                t.key("path"), f"{rel!r} leaves the project", "Keep it inside the project"
            )
        missing = [name for name in needed if not (folder / name).is_file()]
    except OSError as exc:  # e.g. a name too long for the file system
        t.source.fail(t.key("path"), f"{rel!r} cannot be read ({exc.strerror})", "Fix the path")
    if missing:
        t.source.fail(
            t.key("path"),
            f"{rel!r} has no {missing[0]}",
            f"Create {rel}/{missing[0]} (the manager's own lockfile) or fix the path",
        )


def _sandbox(t: Table | None) -> SandboxSpec:
    if t is None:
        return SandboxSpec()
    t.check_keys(
        [
            "gvisor",
            "egress_allowlist",
            "env_passthrough",
            "extra_mounts",
            "network",
            "security",
            "resources",
            "logs",
        ]
    )
    security = t.table("security")
    sec: dict[str, Any] = {}
    if security:
        security.check_keys(["gvisor", "no_new_privileges", "drop_capabilities", "seccomp_profile"])
        sec = {
            "no_new_privileges": security.boolean("no_new_privileges", default=True)
            if "no_new_privileges" in security.data
            else None,
            "drop_capabilities": _drop_capabilities(security),
            "seccomp_profile": security.optional_string("seccomp_profile"),
        }
    resources = t.table("resources")
    gvisor = t.boolean("gvisor", default=False)
    if security and "gvisor" in security.data:
        gvisor = security.boolean("gvisor", default=False)
    return SandboxSpec(
        gvisor=gvisor,
        egress_allowlist=t.str_list("egress_allowlist", check=patterns.hostname),
        env_passthrough=t.str_list("env_passthrough", check=patterns.env_name),
        extra_mounts=t.str_list("extra_mounts", check=patterns.mount),
        network=t.optional_string("network", check=patterns.network_name),
        resources=_resources(resources),
        logs=_logs(t.table("logs")),
        **sec,
    )


def _drop_capabilities(security: Table) -> bool | None:
    value = security.data.get("drop_capabilities")
    if isinstance(value, list):
        security.source.fail(
            security.key("drop_capabilities"),
            "must be true or false, not a list: Risoluto reads a boolean (true runs the agent "
            "with --cap-drop=ALL) and silently replaces a list, even [], with its default",
            "Write `drop_capabilities = true` to drop every capability, or false to keep "
            "Docker's default set",
        )
    return security.boolean("drop_capabilities", default=True) if value is not None else None


def _resources(t: Table | None) -> dict[str, str]:
    """`[sandbox.resources]`, each value one Docker reads (`model.resources`), as a string."""
    if t is None:
        return {}
    t.check_keys(["memory", "memory_reservation", "memory_swap", "cpus", "tmpfs_size"])
    return {name: _docker_value(t, name) for name in sorted(t.data)}


def _docker_value(t: Table, name: str) -> str:
    """The string Risoluto passes to `docker run` for `name`; SpecError if Docker would refuse
    it or read it as something else (an unquoted `memory = 4` is 4 bytes)."""
    value = t.data[name]
    number = isinstance(value, int | float) and not isinstance(value, bool)
    text = str(value) if number and name in resources.NUMBERS_ALLOWED else value
    fix = f"e.g. `{name} = {resources.EXAMPLES[name]}`"
    if not isinstance(text, str):
        unquoted = " (unquoted, Docker would read bytes)" if number else ""
        shown = json.dumps(value, default=str)
        t.source.fail(t.key(name), f"{shown} must be a quoted string{unquoted}", fix)
    problem = resources.CHECKS[name](text)
    if problem:
        t.source.fail(t.key(name), f"{text!r} {problem}", fix)
    return text


def _logs(t: Table | None) -> dict[str, str | int]:
    """`[sandbox.logs]`: Risoluto's --log-driver and its max-size and max-file options."""
    if t is None:
        return {}
    t.check_keys(["driver", "max_size", "max_file"])
    found: dict[str, str | int] = {}
    driver = t.optional_string("driver")
    if driver is not None:
        found["driver"] = driver
    if "max_size" in t.data:
        found["max_size"] = _docker_value(t, "max_size")
    if "max_file" in t.data:
        count = t.data["max_file"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            t.source.fail(
                t.key("max_file"),
                "must be a whole number of files, 1 or more",
                "e.g. `max_file = 3`",
            )
        found["max_file"] = count
    return found
