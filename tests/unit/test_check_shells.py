"""`sandbox check` probes as Risoluto runs the agent (builder/check/probes.py): through the
image's ENTRYPOINT in `bash -lc`, umask 077 first; a program `sh -c` finds but the login shell
does not is a failure naming both; `--shell` adds a login shell.

The generated script is also run by the host's bash and dash, with a PATH that lacks the
image's tool folder (what Debian's /etc/profile leaves a login shell), to show what it prints.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from builder.check.probes import Plan, run_probes, script
from builder.engine.interface import Confinement
from builder.kinds.kind import Probe
from builder.model.spec import BaseSpec, ImageSpec, Spec
from builder.store.cache import Cache
from tests.unit.clirun import sandbox

SPEC = Spec(
    path=Path("/p/sandbox.toml"),
    image=ImageSpec(name="t/t"),
    base=BaseSpec(image="debian:bookworm"),
)
CONFIG = {
    "Entrypoint": ["/usr/local/bin/docker-entrypoint.sh"],
    "Env": ["PATH=/opt/sandbox/tools/pip/bin:/usr/bin:/bin", "LANG=C.UTF-8"],
}


class ShellProber:
    """Answers each `run_confined` with the output given for its shell (command[0])."""

    def __init__(self, outputs: dict[str, tuple[int, str]]) -> None:
        self.outputs = outputs
        self.commands: list[tuple[str, ...]] = []

    def runtimes(self) -> list[str]:
        return ["runc"]

    def run_confined(
        self, *, image: str, command: Sequence[str], confinement: Confinement, timeout: float
    ) -> tuple[int, str]:
        self.commands.append(tuple(command))
        return self.outputs[command[0]]


def _cache(tmp_path: Path) -> Cache:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    return cache


FOUND = "@@probe 0 bash\n@@out GNU bash\n@@probe 0 git\n@@out git version 2.39\n"


def test_the_probes_run_in_bash_login_after_the_entrypoint_on_the_image_path(
    tmp_path: Path,
) -> None:
    fake = ShellProber({"bash": (0, FOUND)})

    results = run_probes(
        engine=fake, cache=_cache(tmp_path), spec=SPEC, nodes={}, ref="img", config=CONFIG
    )

    [(shell, login, text)] = fake.commands
    assert (shell, login) == ("bash", "-lc")
    assert "umask 077\n" in text
    assert "image_path=/opt/sandbox/tools/pip/bin:/usr/bin:/bin\n" in text
    assert "ENTRYPOINT /usr/local/bin/docker-entrypoint.sh" in results[0].detail
    assert "IMAGE bash -lc 'umask 077; <probes>'" in results[0].detail
    assert all(r.ok for r in results)


def test_a_program_sh_finds_but_the_login_shell_does_not_fails_naming_both(
    tmp_path: Path,
) -> None:
    output = FOUND + (
        "@@probe 127 tools.pip ruff\n@@out bash: line 1: ruff: command not found\n"
        "@@plain /opt/sandbox/tools/pip/bin/ruff\n"
        "@@probe 127 tools.npm tsc\n@@out bash: tsc: command not found\n@@plain \n"
    )
    fake = ShellProber({"bash": (0, output)})

    results = run_probes(
        engine=fake, cache=_cache(tmp_path), spec=SPEC, nodes={}, ref="img", config=CONFIG
    )

    ruff = next(r for r in results if r.check == "tools.pip ruff")
    assert not ruff.ok
    assert "`bash -l`" in ruff.detail
    assert "does not find ruff, though `sh -c` does (/opt/sandbox/tools/pip/bin/ruff)" in (
        ruff.detail
    )
    tsc = next(r for r in results if r.check == "tools.npm tsc")
    assert (tsc.ok, tsc.detail) == (False, "not found on PATH: bash: tsc: command not found")


def test_each_shell_option_is_one_more_login_shell_and_one_check(tmp_path: Path) -> None:
    lost_git = "@@probe 0 bash\n@@out GNU bash\n@@probe 127 git\n@@out zsh: not found\n"
    fake = ShellProber({"bash": (0, FOUND), "zsh": (0, lost_git), "mksh": (0, FOUND)})

    results = run_probes(
        engine=fake,
        cache=_cache(tmp_path),
        spec=SPEC,
        nodes={},
        ref="img",
        config=CONFIG,
        shells=("zsh", "mksh"),
    )

    assert [c[:2] for c in fake.commands] == [("bash", "-lc"), ("zsh", "-lc"), ("mksh", "-lc")]
    assert "home (CODEX_HOME)" not in fake.commands[1][2]  # the entrypoint's steps ran once
    zsh = next(r for r in results if r.check == "login shell zsh")
    assert not zsh.ok
    assert "`zsh -l` does not find git, which `bash -l` finds" in zsh.detail
    mksh = next(r for r in results if r.check == "login shell mksh")
    assert (mksh.ok, mksh.detail) == (True, "finds the 2 programs `bash -l` runs")


def test_a_shell_the_image_lacks_is_a_failure(tmp_path: Path) -> None:
    said = 'exec: "zsh": executable file not found in $PATH'
    fake = ShellProber({"bash": (0, FOUND), "zsh": (127, said)})

    results = run_probes(
        engine=fake, cache=_cache(tmp_path), spec=SPEC, nodes={}, ref="i", shells=("zsh",)
    )

    zsh = results[-1]
    assert (zsh.check, zsh.ok) == ("login shell zsh", False)
    assert "`zsh -lc` did not run in the image (exit 127)" in zsh.detail
    assert said in zsh.detail


@pytest.mark.parametrize("shell", ["bash", "dash"])
def test_the_script_looks_a_program_up_again_as_sh_would(tmp_path: Path, shell: str) -> None:
    """Run for real: the login shell's PATH lacks the tool folder the image's PATH has."""
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "sometool").write_text("#!/bin/sh\necho sometool 1.0\n")
    (tools / "sometool").chmod(0o755)
    plan = Plan(
        probes=(
            Probe(check="tools.pip sometool", argv=("sometool",), tool=True),
            Probe(check="tools.pip absent", argv=("absent-tool",), tool=True),
        ),
        finders=(),
        refused=(),
    )
    text = script(plan, image_path=f"{tools}:/usr/bin:/bin")

    done = subprocess.run(
        ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={tmp_path}", shell, "-c", text],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    lines = done.stdout.splitlines()
    assert lines[0] == "@@probe 127 tools.pip sometool"
    assert f"@@plain {tools}/sometool" in lines
    assert lines[-1] == "@@plain "  # absent-tool: found by neither
    umask = subprocess.run(
        [shell, "-c", text.replace("exit 0\n", "umask\n")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert umask.stdout.splitlines()[-1] == "0077"


def test_a_shell_option_that_is_not_a_posix_login_shell_is_refused() -> None:
    done = sandbox("check", "--shell", "fish")

    assert done.exit_code == 2
    assert "--shell 'fish'" in done.stderr
