"""docs/renovate-sandbox.json, the Renovate preset: its regex managers find exactly the exact
pins of a sandbox.toml (Renovate's own run on this sample is described in docs/ci.md), and
its post-upgrade task relocks. The patterns are JavaScript regexes; Python reads them once
`(?<name>` is spelled `(?P<name>`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from builder.model.specfile import load_spec

REPO = Path(__file__).resolve().parents[2]
PRESET: dict[str, Any] = json.loads((REPO / "docs" / "renovate-sandbox.json").read_text())

SAMPLE = """\
[image]
name = "acme/sandbox"

[base]
image = "debian:bookworm-slim"

[system]
packages = ["jq", "libvips-dev=8.14.*"]

[tools]
pip = ["ruff==0.6.9", "mypy", "black[d]==24.8.0", "poetry==1.8.*"]
npm = ["typescript@5.6.3", "@openai/codex@0.46.0", "turbo@2", "@vercel/ncc"]

[tools.bin.kubectl]
{renovate_comment}
version = "1.31.0"
url = "https://dl.k8s.io/release/v{{version}}/bin/linux/{{arch}}/kubectl"
""".format(
    renovate_comment="# renovate: datasource=github-releases depName=kubernetes/kubernetes"
    " extractVersion=^v(?<version>.+)$"
)


def _python(pattern: str) -> re.Pattern[str]:
    return re.compile(
        pattern.replace("(?<", "(?P<").replace("(?P<=", "(?<=").replace("(?P<!", "(?<!")
    )


def _found(text: str) -> set[tuple[str, str, str]]:
    deps = set()
    for manager in PRESET["customManagers"]:
        for pattern in manager["matchStrings"]:
            for match in _python(pattern).finditer(text):
                groups = match.groupdict()
                datasource = groups.get("datasource") or manager["datasourceTemplate"]
                deps.add((datasource, groups["depName"], groups["currentValue"]))
    return deps


def test_the_sample_is_a_valid_spec(tmp_path: Path) -> None:
    (tmp_path / "sandbox.toml").write_text(SAMPLE)

    spec = load_spec(tmp_path / "sandbox.toml")

    assert spec.image.name == "acme/sandbox"


def test_exact_pins_are_found_and_ranges_and_apt_packages_are_not() -> None:
    assert _found(SAMPLE) == {
        ("pypi", "ruff", "0.6.9"),
        ("pypi", "black", "24.8.0"),
        ("npm", "typescript", "5.6.3"),
        ("npm", "@openai/codex", "0.46.0"),
        ("github-releases", "kubernetes/kubernetes", "1.31.0"),
    }


def test_the_managers_read_sandbox_toml_only() -> None:
    for manager in PRESET["customManagers"]:
        [pattern] = manager["managerFilePatterns"]
        regex = re.compile(pattern.strip("/"))
        assert regex.search("sandbox.toml")
        assert regex.search("envs/agent/sandbox.toml")
        assert not regex.search("sandbox.lock")
        assert not regex.search("pyproject.toml")


def test_the_lock_moves_with_the_spec() -> None:
    task = PRESET["postUpgradeTasks"]

    assert task["commands"] == ["sandbox -f {{{packageFile}}} lock"]
    assert task["fileFilters"] == ["**/sandbox.lock"]
