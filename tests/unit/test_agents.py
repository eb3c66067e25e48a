"""Agent CLIs pinned by the lock (builder/model/agents.py): their updater switch in the image's
Env, and `sandbox check` failing one that reports another version than the lock's."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from builder.actions.platformimage import platform_image
from builder.check.probes import run_probes
from builder.engine.interface import Confinement
from builder.image.profile import profile_script
from builder.model.agents import agent_env, agent_versions, reports_version
from builder.model.lockfile import Lock, NodeKind, NodeLock
from builder.model.spec import BaseSpec, ImageSpec, Spec
from builder.model.toolinputs import NpmToolsInputs
from builder.store.cache import Cache, NodeEntry
from tests.unit.test_index import _lock

PACKAGES = [
    {"path": "node_modules/@anthropic-ai/claude-code", "version": "2.0.59", "bin": {"claude": "c"}},
    {"path": "node_modules/@openai/codex", "version": "0.46.0", "bin": "bin/codex.js"},
    {"path": "node_modules/typescript", "version": "5.9.3", "bin": {"tsc": "t"}},
]


def _npm(*tools: str) -> dict[str, object]:
    return {"node": "22.12.0", "tools": list(tools), "packages": PACKAGES}


def _inputs(*tools: str) -> NpmToolsInputs:
    node = NodeLock(name="tools.npm", kind=NodeKind.TOOLS, key="k", parents=(), inputs=_npm(*tools))
    return node.inputs_as(NpmToolsInputs)


def test_claude_code_gets_its_updater_turned_off_and_the_others_need_no_env() -> None:
    assert agent_env(_inputs("@anthropic-ai/claude-code@2", "typescript")) == {
        "DISABLE_AUTOUPDATER": "1"
    }
    assert agent_env(_inputs("@openai/codex", "typescript")) == {}
    assert agent_env(None) == {}


def test_each_agent_cli_executable_is_pinned_to_its_locked_version() -> None:
    versions = agent_versions(_inputs("@anthropic-ai/claude-code", "@openai/codex", "typescript"))

    assert versions == {"claude": "2.0.59", "codex": "0.46.0"}


@pytest.mark.parametrize(
    ("said", "pinned"),
    [
        ("codex-cli 0.46.0", True),
        ("2.0.59 (Claude Code)", True),
        ("codex-cli 10.46.0", False),
        ("codex-cli 0.46.0-alpha.1", False),
        ("codex-cli 0.47.0", False),
    ],
)
def test_a_version_is_reported_only_as_a_whole_word(said: str, pinned: bool) -> None:
    version = "2.0.59" if "Claude" in said else "0.46.0"

    assert reports_version(said, version) is pinned


def test_the_image_env_and_its_login_profile_carry_the_switch_and_image_env_wins(
    tmp_path: Path,
) -> None:
    cache = Cache(tmp_path / "cache", downloads=tmp_path / "dl", store=tmp_path / "store")
    cache.ensure()
    base = _lock()
    platforms = {
        platform: {
            **nodes,
            "tools.npm": NodeLock(
                name="tools.npm",
                kind=NodeKind.TOOLS,
                key=f"sha256:{'7' * 63}{i}",
                parents=("system",),
                inputs=_npm("@anthropic-ai/claude-code"),
            ),
        }
        for i, (platform, nodes) in enumerate(base.platforms.items())
    }
    lock = Lock(spec_hash="sha256:x", source_date_epoch=0, platforms=platforms)
    nodes = lock.nodes("linux/amd64")
    entries = [NodeEntry(name=n, key=nodes[n].key, layers=(), env={}) for n in nodes]
    spec = Spec(
        path=tmp_path / "sandbox.toml",
        image=ImageSpec(name="t/agents"),
        base=BaseSpec(image="debian:bookworm"),
    )

    def env_of(spec: Spec) -> dict[str, str]:
        image = platform_image(
            spec=spec, lock=lock, platform="linux/amd64", entries=entries, cache=cache
        )
        config = json.loads(image.config.data)["config"]
        env = dict(e.split("=", 1) for e in config["Env"])
        top = cache.layer_path(image.layers[-1].diff_id).read_bytes()
        assert profile_script(env) in top
        return env

    assert env_of(spec)["DISABLE_AUTOUPDATER"] == "1"
    mine = replace(spec, image=replace(spec.image, env={"DISABLE_AUTOUPDATER": "0"}))
    assert env_of(mine)["DISABLE_AUTOUPDATER"] == "0"


class VersionProber:
    def __init__(self, output: str) -> None:
        self.output = output

    def runtimes(self) -> list[str]:
        return ["runc"]

    def run_confined(
        self, *, image: str, command: Sequence[str], confinement: Confinement, timeout: float
    ) -> tuple[int, str]:
        return 0, self.output


def test_check_fails_an_agent_cli_that_reports_another_version_than_the_lock(
    tmp_path: Path,
) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    npm = NodeLock(
        name="tools.npm",
        kind=NodeKind.TOOLS,
        key="k",
        parents=(),
        inputs=_npm("@anthropic-ai/claude-code", "@openai/codex", "typescript"),
    )
    output = (
        "@@probe 0 tools.npm claude\n@@out 2.0.60 (Claude Code)\n"
        "@@probe 0 tools.npm codex\n@@out codex-cli 0.46.0\n"
        "@@probe 0 tools.npm tsc\n@@out Version 5.9.3\n"
    )
    spec = Spec(path=Path("/p/sandbox.toml"), image=ImageSpec(name="t/t"), base=BaseSpec(image="d"))

    results = run_probes(
        engine=VersionProber(output),
        cache=cache,
        spec=spec,
        nodes={"tools.npm": npm},
        ref="img",
    )

    found = {r.check: r for r in results}
    assert not found["tools.npm claude"].ok
    assert "`bash -lc 'claude --version'` says 2.0.60 (Claude Code)" in (
        found["tools.npm claude"].detail
    )
    assert "the lock pins 2.0.59" in found["tools.npm claude"].detail
    assert found["tools.npm codex"].ok
    assert found["tools.npm codex"].detail == "codex-cli 0.46.0 (the lock's)"
    assert (found["tools.npm tsc"].ok, found["tools.npm tsc"].detail) == (True, "Version 5.9.3")
