"""Every test runs against a user-wide store of its own, never the real one in ~/.cache.

The store (`builder.store.cache.default_store_dir`) is where built nodes are shared between a
user's projects. Integration tests share one store per session, as they share one cache dir
(the CLI runs in a subprocess that inherits os.environ). A test without Docker gets an empty
store of its own, so what one unit test puts there cannot turn another's miss into a hit.
`SANDBOX_DOWNLOAD_DIR` is left as it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

STORE_ENV = "SANDBOX_STORE_DIR"


@pytest.fixture(scope="session", autouse=True)
def session_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The store of this test session (set before any session fixture builds a node)."""
    folder = tmp_path_factory.mktemp("store")
    before = os.environ.get(STORE_ENV)
    os.environ[STORE_ENV] = str(folder)
    yield folder
    if before is None:
        os.environ.pop(STORE_ENV, None)
    else:
        os.environ[STORE_ENV] = before


@pytest.fixture(autouse=True)
def own_store(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    session_store: Path,
) -> Path:
    """The store a test sees: its own for a test without Docker, else the session's."""
    if request.node.get_closest_marker("docker") is not None:
        return session_store
    folder = tmp_path_factory.mktemp("store")
    monkeypatch.setenv(STORE_ENV, str(folder))
    return folder
