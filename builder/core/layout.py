"""Where things live, kept apart so that reading them imports nothing: the spec a command
works on, the cache dir of a project and the name of everything in it, and a deps node's
files in the image (facts the deps recipe and the exports of `mount` mode share)."""

from __future__ import annotations

import os
from pathlib import Path

SPEC_FILE = "sandbox.toml"


def find_spec(start: Path) -> Path:
    """The sandbox.toml a command without `-f` works on: the first one in `start` or a parent.

    As uv finds pyproject.toml, so `sandbox status` works from any subfolder of a project. The
    search stops at the repository root (the first folder holding `.git`), else at the
    filesystem root, so a stray ~/sandbox.toml never answers for an unrelated repository.
    Nothing found: `start`/sandbox.toml, which `init` writes and the others say is missing.
    """
    start = start.absolute()
    for folder in (start, *start.parents):
        if (folder / SPEC_FILE).is_file():
            return folder / SPEC_FILE
        if (folder / ".git").exists():
            break
    return start / SPEC_FILE


def project_cache_dir(spec_path: Path, given: Path | None = None) -> Path:
    """The cache dir of the project whose spec is `spec_path`, the one rule every command and
    action follows: `given` (`--cache-dir`), else `SANDBOX_CACHE_DIR`, else `cache/` beside
    sandbox.toml."""
    if given is not None:
        return given
    env = os.environ.get("SANDBOX_CACHE_DIR")
    return Path(env) if env else spec_path.parent / "cache"


# The cache dir's contents: each name is spelled here only.
CACHE_LOCK = ".lock"  # held while a build writes here; the no-op replay takes it shared
CACHE_LAYERS = "layers"  # <diff ID hex>.tar (the user-wide store has layers/ and nodes/ too)
CACHE_NODES = "nodes"  # <node key hex>.json: a built node's layers and env
CACHE_LOGS = "logs"  # <node>.log of each step, apt-*.log of the resolvers
CACHE_TMP = "tmp"  # scratch of the running steps, cleared by the next build
CACHE_BUILDS = "builds"  # history.py: the last build of each spec using this cache
CACHE_BLOBS = "blobs"  # blobs.py: the compressed layers of published nodes
CACHE_DEPS = "deps"  # export.py: the trees of `mount`-mode deps
OVERLAY_FILE = "overlay.json"  # the orchestrator overlay of the last build
NOOP_FILE = "noop.json"  # noop.py: what a build with nothing to do prints
STACKS_FILE = "stacks.json"  # loading.py: the layer stacks of the engine's images
ENTRIES_FILE = "entries.json"  # cache.py: how many tar entries each layer holds
APPLIED_FILE = "applied.json"  # applied.py: what each apply to Risoluto set
SBOM_FILE = "sbom.spdx.json"  # the host platform's; another's names its arch

DEPS_PREFIX = "/opt/sandbox/deps"
# The folder each manager's tree is in, under the node's prefix (what `mount` exports).
TREES = {"pnpm": "node_modules", "npm": "node_modules", "pip": "venv", "uv": "venv"}
