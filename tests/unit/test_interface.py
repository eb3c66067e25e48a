"""The engine interface (builder/engine/interface.py): the capability an engine may offer
besides `Engine`, asked for through `diff_folder`."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from builder.engine.interface import Engine, diff_folder
from tests.unit.fake_engine import FakeEngine


def test_an_engine_offering_diff_folders_gives_the_containers_folder(tmp_path: Path) -> None:
    engine = FakeEngine(root=tmp_path)
    assert diff_folder(engine, "c1") == tmp_path / "containers" / "c1"


def test_an_engine_without_diff_folders_gives_none(tmp_path: Path) -> None:
    """An engine with nothing but `Engine` (Podman, a remote daemon): the caller commits."""

    class Plain:
        """Stands for an engine class with no `upper_dir` at all."""

    assert diff_folder(cast(Engine, Plain()), "c1") is None
