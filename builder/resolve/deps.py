"""Pinning a project's dependency tree: its own lockfile's sha256 and the manager's version."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from builder.errors import ResolutionError
from builder.spec import DepSpec


def lock_dep(
    dep: DepSpec,
    *,
    runtime_version: str,
    old: Mapping[str, Any] | None,
    update: bool,
    platform: str,
    downloads: Path,
) -> dict[str, Any]:
    msg = f"deps.{dep.name}: locking [deps] is not supported yet. Remove it for now"
    raise ResolutionError(msg)
