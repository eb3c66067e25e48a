"""Agent CLIs installed as npm tools, pinned by the lock: what keeps them at that version.

An agent CLI that updates itself inside a sandbox runs a version no lock names. Each one's
own documented switch is used where it is an environment variable, set in the image's Env at
assembly (so it depends on the lock alone and every shell sees it, image/profile.py):

- `@anthropic-ai/claude-code`: `DISABLE_AUTOUPDATER=1` (Claude Code's settings page, the
  environment variables table: "Set to 1 to disable automatic updates").
- `@openai/codex` and `@google/gemini-cli` have no such variable: Codex reads
  `check_for_update_on_startup = false` from `$CODEX_HOME/config.toml` (which Risoluto writes
  afresh), Gemini CLI `general.enableAutoUpdate = false` from a settings.json. Their Env is
  empty here; `sandbox check` still proves the version each one reports is the lock's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from builder.core.patterns import npm_name
from builder.model.toolinputs import NpmToolsInputs


@dataclass(frozen=True, kw_only=True)
class AgentCli:
    env: Mapping[str, str] = field(default_factory=dict)  # what turns its updater off


AGENT_CLIS = {
    "@anthropic-ai/claude-code": AgentCli(env={"DISABLE_AUTOUPDATER": "1"}),
    "@openai/codex": AgentCli(),
    "@google/gemini-cli": AgentCli(),
}


def agent_env(npm: NpmToolsInputs | None) -> dict[str, str]:
    """The Env the locked agent CLIs among the npm tools need, sorted by name."""
    env: dict[str, str] = {}
    for package in _agents(npm):
        env.update(AGENT_CLIS[package].env)
    return dict(sorted(env.items()))


def agent_versions(npm: NpmToolsInputs | None) -> dict[str, str]:
    """Executable -> the version the lock pins, for each agent CLI among the npm tools."""
    found: dict[str, str] = {}
    for entry in npm.packages if npm else ():
        name = entry.path.removeprefix("node_modules/")
        if name not in _agents(npm) or entry.version is None:
            continue
        declared = entry.bin or {}
        bins = [name.rpartition("/")[2]] if isinstance(declared, str) else sorted(declared)
        found.update(dict.fromkeys(bins, entry.version))
    return found


def reports_version(output: str, version: str) -> bool:
    """Whether a `--version` line names `version` as a whole word ("codex-cli 0.46.0",
    "2.0.59 (Claude Code)"), not as part of another ("10.46.0", "0.46.0-alpha")."""
    return re.search(rf"(?<![\w.-]){re.escape(version)}(?![\w.-])", output) is not None


def _agents(npm: NpmToolsInputs | None) -> set[str]:
    """The agent CLIs among the npm tools sandbox.toml asks for."""
    asked = {npm_name(spec) for spec in npm.tools} if npm else set()
    return asked & set(AGENT_CLIS)
