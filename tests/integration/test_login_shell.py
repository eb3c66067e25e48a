"""Every shell of the image sees its Env (image/profile.py), on a real engine.

Debian's /etc/profile resets PATH for login shells, so without the image's profile script
`bash -lc 'command -v ruff'` finds nothing the image put under /opt/sandbox. The spec is
test_explain_gc.py's (same text, same keys), so a session that ran it finds every node cached.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import Project, docker

pytestmark = pytest.mark.docker

SPEC = """
[image]
name = "sandbox-test/bumped"

[base]
bootstrap = { suite = "bookworm" }

[tools]
pip = ["ruff==0.6.9"]
"""
SHELLS = (["bash", "-lc"], ["sh", "-lc"], ["bash", "-c"], ["sh", "-c"])


def test_login_and_plain_shells_of_any_uid_find_the_image_tools(
    project: Project, base_image: str
) -> None:
    project.write(SPEC)
    project.ok("lock")
    image = json.loads(project.ok("build", "--json").out)["image"]["id"]
    config = json.loads(docker("image", "inspect", image))[0]["Config"]
    path = next(e for e in config["Env"] if e.startswith("PATH=")).removeprefix("PATH=")

    for shell in SHELLS:
        found = docker("run", "--rm", "--user", "12345:12345", image, *shell, "command -v ruff")
        assert found.strip().startswith("/opt/sandbox/"), (shell, found)
        seen = docker("run", "--rm", "--user", "12345:12345", image, *shell, 'echo "$PATH"')
        assert seen.strip().startswith(path), (shell, seen, path)

    history = json.loads(
        docker("image", "history", "--no-trunc", "--format", "{{json .}}", image).splitlines()[0]
    )
    assert history["CreatedBy"] == "sandbox-builder: profile"

    # The same login shell without the script: Debian's PATH, no ruff.
    without = docker(
        "run",
        "--rm",
        image,
        "sh",
        "-c",
        "rm /etc/profile.d/sandbox-builder.sh && "
        "setpriv --reuid 12345 --regid 12345 --clear-groups bash -lc 'command -v ruff' "
        "|| echo none",
    )
    assert without.strip() == "none"


def test_check_probes_in_login_shells_and_fails_an_image_whose_profile_resets_path(
    project: Project, base_image: str, tmp_path: Path
) -> None:
    """`sandbox check` runs the probes as Risoluto runs the agent, in `bash -lc`."""
    project.write(SPEC)
    project.ok("lock")
    tag = json.loads(project.ok("build", "--json").out)["image"]["tags"][0]

    run = project.sandbox("check", "--json", "--shell", "sh")
    results = {r["check"]: r for r in json.loads(run.out)}
    # The spec has no git, which check asks of every agent image; everything else passes.
    assert (run.code, [c for c, r in results.items() if not r["ok"]]) == (5, ["git"]), run.err
    assert results["tools.pip ruff"]["detail"].startswith("ruff 0.6.9")
    assert results["login shell sh"]["ok"], results["login shell sh"]
    assert "IMAGE bash -lc 'umask 077; <probes>'" in results["docker run"]["detail"]

    context = tmp_path / "no-profile"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {tag}\nUSER root\nRUN rm /etc/profile.d/sandbox-builder.sh\nUSER agent\n"
    )
    broken = "sandbox-test/no-profile:latest"
    docker("build", "-q", "-t", broken, str(context))
    try:
        run = project.sandbox("check", "--json", "--image", broken)
    finally:
        docker("rmi", "-f", broken, check=False)
    assert run.code == 5, run.err
    ruff = {r["check"]: r for r in json.loads(run.out)}["tools.pip ruff"]
    assert not ruff["ok"]
    assert "`bash -l` (the shell Risoluto runs the agent in) does not find ruff" in ruff["detail"]
    assert "though `sh -c` does (/opt/sandbox/tools/pip/bin/ruff)" in ruff["detail"]
