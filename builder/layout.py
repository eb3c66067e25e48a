"""Where things live, kept apart so that reading them imports nothing: the cache dir of a
project, and a deps node's files in the image (facts the deps recipe and the exports of
`mount` mode share)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir(spec_path: Path) -> Path:
    """`SANDBOX_CACHE_DIR`, else `cache/` beside sandbox.toml."""
    env = os.environ.get("SANDBOX_CACHE_DIR")
    return Path(env) if env else spec_path.parent / "cache"


DEPS_PREFIX = "/opt/sandbox/deps"
# The folder each manager's tree is in, under the node's prefix (what `mount` exports).
TREES = {"pnpm": "node_modules", "npm": "node_modules", "pip": "venv", "uv": "venv"}
