"""What the recipes do for a client that is not root (builder/recipes/common.py, base.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest

from builder.core.errors import BuildError
from builder.engine.interface import Mount
from builder.engine.step import StepContext, hand_back
from builder.kinds.base import build_base
from builder.model.lockfile import NodeKind, NodeLock

MOUNTS = [
    Mount(source="/host/ca.crt", target="/tmp/sandbox-builder-ca.crt"),
    Mount(source="/host/out", target="/opt/sandbox/tools/npm", read_only=False),
    Mount(source="/host/npm", target="/root/.npm", read_only=False),
]


def test_a_root_client_gets_its_step_scripts_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getuid", lambda: 0)

    assert hand_back(MOUNTS) == ""


def test_a_client_that_is_not_root_gets_its_writable_folders_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(os, "getuid", lambda: 1001)
    monkeypatch.setattr(os, "getgid", lambda: 1001)

    line = hand_back(MOUNTS)

    assert line == (
        "trap 'chown -hR 1001:1001 /opt/sandbox/tools/npm /root/.npm 2>/dev/null || true' EXIT\n"
    )
    # The trap runs however the script ends, and keeps the script's own exit status.
    done = subprocess.run(["/bin/sh", "-ec", line + "exit 3"], capture_output=True, check=False)
    assert done.returncode == 3


def test_bootstrap_as_a_user_that_is_not_root_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1001)
    node = NodeLock(
        name="base",
        kind=NodeKind.BASE,
        key="sha256:" + "0" * 64,
        parents=(),
        inputs={
            "bootstrap": {"suite": "bookworm", "variant": "minbase", "mirror": "http://m"},
            "packages": [],
        },
    )

    with pytest.raises(BuildError) as raised:
        build_base(cast(StepContext, cast(Any, None)), node)

    text = str(raised.value)
    assert "needs root" in text
    assert "uid 1001" in text
    assert "[base] image" in text
