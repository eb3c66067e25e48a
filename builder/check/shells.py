"""The shells `sandbox check` probes in: Risoluto's `bash -lc`, and each `--shell`.

Risoluto starts the agent as `docker run ... IMAGE bash -lc '<its entrypoint script>'`: the
image's ENTRYPOINT kept, a login shell, whose profile may set PATH afresh (Debian's does). So a
program is looked for the way that shell finds it, and one it misses is looked up again as
`docker run IMAGE sh -c` would, on the image config's PATH, to tell a broken profile from a
missing program.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from builder.check.report import CheckResult
from builder.image.assemble import DEFAULT_PATH

LOGIN_SHELL = "bash"  # Risoluto runs the agent with `bash -lc` (spawn.ts)
LOGIN_SHELLS = ("bash", "dash", "ksh", "mksh", "sh", "zsh")  # `--shell`: they run sh scripts
NOT_FOUND = 127


def image_path_of(config: Mapping[str, Any]) -> str:
    """The PATH of the image config's Env: what `docker run IMAGE sh -c` looks programs up on."""
    for entry in config.get("Env") or []:
        name, _, value = str(entry).partition("=")
        if name == "PATH":
            return value
    return DEFAULT_PATH


def entrypoint_of(config: Mapping[str, Any]) -> str:
    entrypoint = config.get("Entrypoint") or []
    return f"the image's ENTRYPOINT {shlex.join(entrypoint)}" if entrypoint else "no ENTRYPOINT"


def login_miss(program: str, plain: str) -> str:
    """Why a program `sh -c` finds at `plain` but the login shell does not is a failure."""
    return (
        f"`{LOGIN_SHELL} -l` (the shell Risoluto runs the agent in) does not find {program}, "
        f"though `sh -c` does ({plain}): the login shell's profile resets PATH. Rebuild the "
        "image with this sandbox-builder (its /etc/profile.d/sandbox-builder.sh puts the "
        "image's PATH back)"
    )


def shell_result(
    shell: str, code: int, output: str, *, there: Mapping[str, int], found: Mapping[str, int]
) -> CheckResult:
    """One check for the login shell `shell` (`--shell`), whose run exited `code` with
    `output` and probe exit codes `there`: it must find every program the `bash -l` run
    found (`found`: its probes' exit codes)."""
    check = f"login shell {shell}"
    if not there:
        tail = " | ".join(output.strip().splitlines()[-2:])
        detail = f"`{shell} -lc` did not run in the image (exit {code}): {tail or 'no output'}"
        return CheckResult(check=check, ok=False, detail=detail)
    lost = [n for n, rc in found.items() if rc != NOT_FOUND and there.get(n) == NOT_FOUND]
    if lost:
        names = ", ".join(lost[:6]) + (" ..." if len(lost) > 6 else "")
        detail = (
            f"`{shell} -l` does not find {names}, which `{LOGIN_SHELL} -l` finds: its login "
            "files reset PATH. Make the image's PATH reach that shell's login files"
        )
        return CheckResult(check=check, ok=False, detail=detail)
    return CheckResult(
        check=check, ok=True, detail=f"finds the {len(there)} programs `{LOGIN_SHELL} -l` runs"
    )
