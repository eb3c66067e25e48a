"""The orchestrator's config overlay (DESIGN.md §7), as the real Risoluto server reads it.

Keys are snake_case under `codex.sandbox` (camelCase ones are stored but ignored by the
server), and the image is pinned by digest: the registry digest once pushed, else the full
local image ID.

Risoluto reads each key with a coercion that falls back to its default when the type is
wrong (src/config/section-builders.ts, coercion.ts: `asString`, `asBoolean`, `asNumber`,
`asLooseStringArray`), and its read-back shows the stored value, not the one in effect. So
`KEY_TYPES` holds the type Risoluto coerces each key to, and `check_types` refuses an
overlay holding a key it does not read, or one of another type, before anything is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from builder.core.atomic import write_atomic
from builder.core.errors import OverlayError
from builder.model.resources import docker_size
from builder.model.spec import SandboxSpec

SANDBOX = ("codex", "sandbox")
STRING, BOOLEAN, NUMBER, STRINGS = "a string", "true or false", "a number", "a list of strings"
# dotted key under codex.sandbox -> the type Risoluto reads it as (deriveSandboxConfig)
KEY_TYPES = {
    "image": STRING,
    "network": STRING,
    "extra_mounts": STRINGS,
    "env_passthrough": STRINGS,
    "egress_allowlist": STRINGS,
    "security.no_new_privileges": BOOLEAN,
    "security.drop_capabilities": BOOLEAN,
    "security.gvisor": BOOLEAN,
    "security.seccomp_profile": STRING,
    "resources.memory": STRING,
    "resources.memory_reservation": STRING,
    "resources.memory_swap": STRING,
    "resources.cpus": STRING,
    "resources.tmpfs_size": STRING,
    "logs.driver": STRING,
    "logs.max_size": STRING,
    "logs.max_file": NUMBER,
}
# What Risoluto passes to `docker run` when the overlay leaves a resource out (defaults.ts).
RESOURCE_DEFAULTS = {
    "memory": "4g",
    "memory_reservation": "1g",
    "memory_swap": "4g",
    "cpus": "2.0",
    "tmpfs_size": "512m",
}


def make_overlay(
    *, image_ref: str, sandbox: SandboxSpec, deps_mounts: Sequence[str] = ()
) -> dict[str, Any]:
    """The overlay; `deps_mounts` are the read-only trees `[deps] mount` exported."""
    settings: dict[str, Any] = {"image": image_ref}
    if sandbox.extra_mounts or deps_mounts:
        settings["extra_mounts"] = [*sandbox.extra_mounts, *deps_mounts]
    if sandbox.env_passthrough:
        settings["env_passthrough"] = list(sandbox.env_passthrough)
    if sandbox.egress_allowlist:
        settings["egress_allowlist"] = list(sandbox.egress_allowlist)
    security: dict[str, Any] = {"gvisor": sandbox.gvisor}
    if sandbox.no_new_privileges is not None:
        security["no_new_privileges"] = sandbox.no_new_privileges
    if sandbox.drop_capabilities is not None:
        security["drop_capabilities"] = sandbox.drop_capabilities
    if sandbox.seccomp_profile is not None:
        security["seccomp_profile"] = sandbox.seccomp_profile
    settings["security"] = security
    if sandbox.resources:
        settings["resources"] = dict(sandbox.resources)
    if sandbox.logs:
        settings["logs"] = dict(sandbox.logs)
    if sandbox.network:
        settings["network"] = sandbox.network
    return {"codex": {"sandbox": settings}}


def leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Each value of an overlay by key path, sorted; objects are merged by the server, so
    their keys are set one by one, while a list or a scalar is one value."""
    if isinstance(value, dict) and (value or not path):
        for key in sorted(value):
            yield from leaves(value[key], (*path, key))
    else:
        yield path, value


MISSING = object()  # what `lookup` gives for a key path the config does not hold


def lookup(config: Any, path: tuple[str, ...]) -> Any:
    """The value at key `path` of `config`, or MISSING."""
    for key in path:
        if not isinstance(config, dict) or key not in config:
            return MISSING
        config = config[key]
    return config


def check_types(overlay: dict[str, Any], where: str) -> None:
    """Refuse (OverlayError naming each key) what Risoluto would not read as sent."""
    problems = []
    for path, value in leaves(overlay):
        if path[:2] != SANDBOX:
            problems.append(f"{'.'.join(path)} is not under codex.sandbox")
            continue
        name = ".".join(path[2:])
        wanted = KEY_TYPES.get(name)
        if wanted is None:
            problems.append(f"codex.sandbox.{name} is a key Risoluto does not read")
        elif not _is(value, wanted):
            shown = json.dumps(value)[:60]
            problems.append(
                f"codex.sandbox.{name} is {shown}, but Risoluto reads {wanted} there and "
                "silently uses its default for anything else"
            )
    if problems:
        msg = (
            f"{where}: {'; '.join(problems)}. Nothing was sent. Fix sandbox.toml and run "
            "`sandbox build` to rewrite the overlay"
        )
        raise OverlayError(msg)


def _is(value: Any, wanted: str) -> bool:
    if wanted == BOOLEAN:
        return isinstance(value, bool)
    if wanted == NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if wanted == STRINGS:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    return isinstance(value, str)


def resource_warnings(resources: dict[str, str]) -> list[str]:
    """Limits Docker would refuse once Risoluto fills in its defaults for the others."""
    given = {**RESOURCE_DEFAULTS, **resources}
    memory, swap, reserve = (
        docker_size(given[k]) for k in ("memory", "memory_swap", "memory_reservation")
    )
    found = []
    if memory is not None and swap is not None and swap != -1 and swap < memory:
        said = "" if "memory_swap" in resources else " (Risoluto's default)"
        found.append(
            f"[sandbox.resources] memory = {given['memory']!r} with memory_swap = "
            f"{given['memory_swap']!r}{said}: Docker refuses a swap limit below the memory "
            "limit, so no agent would start. Set memory_swap to at least memory (or -1)"
        )
    if memory is not None and reserve is not None and reserve > memory:
        said = "" if "memory_reservation" in resources else " (Risoluto's default)"
        found.append(
            f"[sandbox.resources] memory = {given['memory']!r} with memory_reservation = "
            f"{given['memory_reservation']!r}{said}: Docker refuses a reservation above the "
            "limit, so no agent would start. Set memory_reservation to at most memory"
        )
    return found


def overlay_text(overlay: dict[str, Any]) -> str:
    """The overlay as its file holds it."""
    return json.dumps(overlay, indent=2, sort_keys=True) + "\n"


def write_overlay(overlay: dict[str, Any], path: Path) -> None:
    write_atomic(path, overlay_text(overlay).encode())
