"""Where a deps node's files live in the image: facts the deps recipe and the exports of
`mount` mode share (kept here, apart from the recipes, so reading them imports nothing)."""

from __future__ import annotations

DEPS_PREFIX = "/opt/sandbox/deps"
# The folder each manager's tree is in, under the node's prefix (what `mount` exports).
TREES = {"pnpm": "node_modules", "npm": "node_modules", "pip": "venv", "uv": "venv"}
