"""`uv tool install` from a fresh clone into a clean folder gives a working `sandbox` (issue
30): `sandbox --help`, `sandbox status` from a subfolder of the example, which finds
examples/codex-cloud/sandbox.toml upward, and shell completion that installs and completes.

It clones the committed HEAD of this checkout and installs it with its dependencies from PyPI
into a tool folder of its own, so it sits in the real-environment suite (the `docker` mark),
not in the quick unit run; the engine itself is not asked anything (`status` needs none).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]


def _run(argv: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_uv_tool_install_of_a_fresh_clone_gives_a_working_sandbox(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "VIRTUAL_ENV", "SANDBOX_CACHE_DIR"}
    }
    env.update(
        UV_TOOL_DIR=str(tmp_path / "tools"),
        UV_TOOL_BIN_DIR=str(tmp_path / "bin"),
        UV_CACHE_DIR=str(tmp_path / "uv-cache"),
        UV_PYTHON_DOWNLOADS="never",
    )
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable

    installed = _run(
        [sys.executable, "-m", "uv", "tool", "install", "--python", python, str(clone)],
        cwd=tmp_path,
        env=env,
    )

    assert installed.returncode == 0, installed.stderr
    sandbox = tmp_path / "bin" / "sandbox"
    helped = _run([str(sandbox), "--help"], cwd=tmp_path, env=env)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("Usage: sandbox [OPTIONS] COMMAND [ARGS]...")
    example = clone / "examples" / "codex-cloud"
    (example / "deeper" / "still").mkdir(parents=True)
    status = _run([str(sandbox), "status"], cwd=example / "deeper" / "still", env=env)
    assert status.returncode == 0, status.stderr
    last = status.stdout.splitlines()[-1]
    assert last == "up to date" or last.endswith(" nodes to build"), status.stdout
    assert "runtime.node" in status.stdout, "the example's spec, found two folders up"
    imported = _run(
        [
            str(tmp_path / "tools" / "sandbox-builder" / "bin" / "python"),
            "-c",
            "import builder; print(builder.__file__)",
        ],
        cwd=tmp_path,
        env=env,
    )
    assert imported.stdout.startswith(str(tmp_path / "tools")), "the tool's own copy runs"
    home = tmp_path / "home"
    home.mkdir()
    in_bash = {**env, "HOME": str(home), "PATH": f"{tmp_path / 'bin'}:{env['PATH']}"}
    installed_completion = _run(
        ["bash", "-c", "sandbox --install-completion"], cwd=tmp_path, env=in_bash
    )
    assert installed_completion.returncode == 0, installed_completion.stderr
    script = home / ".bash_completions" / "sandbox.sh"
    assert "complete -o default -F _sandbox_completion sandbox" in script.read_text()
    assert str(script) in (home / ".bashrc").read_text()
    completed = _run(
        [str(sandbox)],
        cwd=tmp_path,
        env={
            **env,
            "_SANDBOX_COMPLETE": "complete_bash",
            "COMP_WORDS": "sandbox bu",
            "COMP_CWORD": "1",
        },
    )
    assert completed.stdout.split() == ["build"]
