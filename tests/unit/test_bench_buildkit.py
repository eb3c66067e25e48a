"""The benchmark's BuildKit contender: the multi-stage Dockerfile an expert writes for a lock.

The fixture is the benchmark's own workload (tests/fixtures/bench: its v0 sandbox.toml and
sandbox.lock) with the pnpm project of tests/fixtures/deps/pnpm.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from bench import buildkit
from bench.dockerfile import Context
from builder.kinds import KINDS
from builder.model import lockfile
from builder.model.specfile import load_spec

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _dockerfile(tmp_path: Path, *, link: bool = False) -> Context:
    for name in ("sandbox.toml", "sandbox.lock"):
        shutil.copy2(FIXTURES / "bench" / name, tmp_path / name)
    shutil.copytree(FIXTURES / "deps" / "pnpm", tmp_path / "web")
    lock = lockfile.read(tmp_path / "sandbox.lock", KINDS)
    (platform,) = lock.platforms
    return buildkit.generate(
        spec=load_spec(tmp_path / "sandbox.toml"),
        lock=lock,
        platform=platform,
        base_ref="sandbox-bench/base:latest",
        link=link,
    )


def _stages(text: str) -> dict[str, str]:
    """Stage name (the final one is "") -> its lines."""
    found: dict[str, str] = {}
    for chunk in re.split(r"\n(?=FROM )", text):
        head = chunk.splitlines()[0]
        if head.startswith("FROM "):
            found[head.split(" AS ")[1] if " AS " in head else ""] = chunk
    return found


def test_one_stage_per_independent_layer_copied_into_the_final_one(tmp_path: Path) -> None:
    text = _dockerfile(tmp_path).dockerfile
    stages = _stages(text)
    parents = {name: chunk.splitlines()[0].split()[1] for name, chunk in stages.items()}
    assert parents == {
        "system": "sandbox-bench/base:latest",
        "runtime-node": "system",
        "pip-mypy": "system",
        "pip-ruff": "system",
        "npm-openai-codex": "runtime-node",
        "npm-typescript": "runtime-node",
        "deps-web": "runtime-node",
        "": "system",
    }
    copied = re.findall(r"^COPY --from=(\S+) ", stages[""], re.M)
    assert copied == [
        "runtime-node",
        "pip-mypy",
        "pip-ruff",
        "npm-openai-codex",
        "npm-typescript",
        "deps-web",
    ]
    # docker.io 20.10's built-in frontend: no `# syntax=` (Docker Hub), no COPY --link
    assert "--link" not in text
    assert "syntax" not in text


def test_downloads_go_through_cache_mounts_and_the_ca_through_a_secret(tmp_path: Path) -> None:
    stages = _stages(_dockerfile(tmp_path).dockerfile)
    mounts = {name: re.findall(r"--mount=(\S+)", chunk) for name, chunk in stages.items()}
    targets = {n: {m.split("target=")[1].split(",")[0] for m in ms} for n, ms in mounts.items()}
    secret = "/run/secrets/sandbox-ca.crt"
    assert targets["system"] == {"/var/cache/apt", "/var/lib/apt/lists"}
    assert targets["pip-ruff"] == {secret, "/root/.cache/pip"}
    assert targets["npm-typescript"] == {secret, "/root/.npm"}
    assert targets["deps-web"] == {secret, buildkit.KEEP, buildkit.PNPM_STORE}
    assert targets["runtime-node"] == {secret, buildkit.KEEP}
    for name in set(stages) - {"system", ""}:  # everything fetched over TLS
        assert f"type=secret,id={buildkit.SECRET_ID},target={secret}" in mounts[name], name
    assert "apt-get clean" not in stages["system"]  # the archives are kept, in the mount
    # pip's HTTP cache stays empty behind the TLS proxy: a wheelhouse on the mount instead
    assert "pip download --quiet" in stages["pip-ruff"]
    assert f"--no-index --find-links {buildkit.WHEELHOUSE}" in stages["pip-ruff"]
    assert buildkit.WHEELHOUSE.startswith("/root/.cache/pip/")
    assert "ca-certificates.crt" not in "".join(stages.values())


def test_each_npm_tool_installs_from_its_own_closure(tmp_path: Path) -> None:
    files = _dockerfile(tmp_path).files
    typescript = json.loads(files["npm-typescript/package-lock.json"])
    codex = json.loads(files["npm-@openai+codex/package-lock.json"])
    assert set(typescript["packages"]) == {"", "node_modules/typescript"}
    assert "node_modules/typescript" not in codex["packages"]
    assert "node_modules/@openai/codex" in codex["packages"]


def test_for_buildx_the_final_stage_copies_with_link_and_nothing_else_changes(
    tmp_path: Path,
) -> None:
    plain = _dockerfile(tmp_path).dockerfile
    (tmp_path / "linked").mkdir()
    linked = _dockerfile(tmp_path / "linked", link=True).dockerfile
    final = _stages(linked)[""]
    copies = [line for line in final.splitlines() if line.startswith("COPY ")]
    assert len(copies) == 6
    assert all(line.startswith("COPY --link --from=") for line in copies)
    assert "LABEL dev.sandbox-bench=buildx" in final
    assert "syntax" not in linked  # the frontend built into Docker 28.5's BuildKit
    # the stages above the final one are the same Dockerfile lines
    unlinked = linked.replace("COPY --link --from=", "COPY --from=")
    assert unlinked.replace("bench=buildx", "bench=buildkit") == plain
