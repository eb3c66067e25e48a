"""The orchestrator's config overlay (DESIGN.md §7), as the real Risoluto server reads it.

Keys are snake_case under `codex.sandbox` (camelCase ones are stored but ignored by the
server), and the image is pinned by digest: the registry digest once pushed, else the full
local image ID.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from builder.atomic import write_atomic
from builder.spec import SandboxSpec


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
        security["drop_capabilities"] = list(sandbox.drop_capabilities)
    if sandbox.seccomp_profile is not None:
        security["seccomp_profile"] = sandbox.seccomp_profile
    settings["security"] = security
    if sandbox.resources:
        settings["resources"] = dict(sandbox.resources)
    if sandbox.network:
        settings["network"] = sandbox.network
    return {"codex": {"sandbox": settings}}


def overlay_text(overlay: dict[str, Any]) -> str:
    """The overlay as its file holds it."""
    return json.dumps(overlay, indent=2, sort_keys=True) + "\n"


def write_overlay(overlay: dict[str, Any], path: Path) -> None:
    write_atomic(path, overlay_text(overlay).encode())
