"""The `docker run` Risoluto does for an agent, transcribed from its source, for tests.

Risoluto (OmerFarukOruc/risoluto at f7ed42e) src/docker/spawn.ts, `buildDockerRunArgs`
(lines 178-227) and `buildEntrypointScript` (136-176), with `buildMountArgs` (55-66),
`buildEnvArgs` (68-98) and `buildResourceAndLogArgs` (116-133); the HOME volume is first
chowned by `buildInitCacheVolumeArgs` (256-265, there with alpine: here with the image itself,
as root, since Docker Hub is out of reach). Written out independently of builder/check/spawn.py,
so a test using it checks our image against Risoluto, not our code against itself:

    docker run -i --name risoluto-<run> --user <uid>:<gid> --workdir <workspace>
      -v <workspace>:<workspace> -v risoluto-cache-<run>:/home/agent [-v <extra mount>...]
      -e HOME=/home/agent -e CODEX_HOME=/home/agent/.codex-runtime
      -e RISOLUTO_CODEX_CONFIG_TOML=... -e RISOLUTO_CODEX_COMMAND=<command>
      --add-host=host.docker.internal:host-gateway
      --memory 4g --memory-reservation 1g --memory-swap 4g --cpus 2.0
      --tmpfs /tmp:exec,size=512m --log-driver json-file --log-opt max-size=50m
      --log-opt max-file=3 --cap-drop=ALL --security-opt=no-new-privileges
      --label ... IMAGE bash -lc "set -euo pipefail; umask 077; rm -rf \"$CODEX_HOME\"; ...;
        echo \"risoluto:container_ready\"; exec bash -lc \"$RISOLUTO_CODEX_COMMAND\""

No `--entrypoint`: the image's ENTRYPOINT is kept and gets `bash -lc <script>` as arguments.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

HOME = "/home/agent"
READY = "risoluto:container_ready"

# buildEntrypointScript without an egress allowlist and without auth JSON, joined with "; ".
ENTRYPOINT_SCRIPT = "; ".join(
    [
        "set -euo pipefail",
        "umask 077",
        'rm -rf "$CODEX_HOME"',
        'mkdir -p "$CODEX_HOME"',
        'printf "%s" "$RISOLUTO_CODEX_CONFIG_TOML" > "$CODEX_HOME/config.toml"',
        'printf "\\n[features]\\nuse_linux_sandbox_bwrap = false\\n" >> "$CODEX_HOME/config.toml"',
        'if [ -n "${RISOLUTO_CODEX_AUTH_JSON_B64:-}" ]; then printf "%s" '
        '"$RISOLUTO_CODEX_AUTH_JSON_B64" | base64 -d > "$CODEX_HOME/auth.json"; fi',
        f'echo "{READY}"',
        'exec bash -lc "$RISOLUTO_CODEX_COMMAND"',
    ]
)


def run_agent(image: str, command: str, *, workspace: Path, uid: int = 12345) -> str:
    """Run `command` as Risoluto runs the agent's (as uid `uid`, Risoluto's own defaults for
    every sandbox setting); the output after the ready line, or an AssertionError with all."""
    run = uuid.uuid4().hex[:12]
    volume = f"risoluto-cache-{run}"
    workspace.mkdir(parents=True, exist_ok=True)
    subprocess.run(["chown", f"{uid}:{uid}", str(workspace)], check=True)
    try:
        subprocess.run(  # buildInitCacheVolumeArgs: the fresh HOME volume, given to the uid
            [
                *("docker", "run", "--rm", "-v", f"{volume}:/mnt", "--user", "0:0"),
                *("--entrypoint", "chown", image, f"{uid}:{uid}", "/mnt"),
            ],
            check=True,
            capture_output=True,
        )
        args = ["docker", "run", "-i", "--name", f"risoluto-{run}"]
        args += ["--user", f"{uid}:{uid}", "--workdir", str(workspace)]
        args += ["-v", f"{workspace}:{workspace}", "-v", f"{volume}:{HOME}"]
        args += ["-e", f"HOME={HOME}", "-e", f"CODEX_HOME={HOME}/.codex-runtime"]
        args += ["-e", 'RISOLUTO_CODEX_CONFIG_TOML=model = "gpt-5.4"\n']
        args += ["-e", f"RISOLUTO_CODEX_COMMAND={command}"]
        args += ["--add-host=host.docker.internal:host-gateway"]
        args += ["--memory", "4g", "--memory-reservation", "1g", "--memory-swap", "4g"]
        args += ["--cpus", "2.0", "--tmpfs", "/tmp:exec,size=512m"]
        args += ["--log-driver", "json-file", "--log-opt", "max-size=50m"]
        args += ["--log-opt", "max-file=3"]
        args += ["--cap-drop=ALL", "--security-opt=no-new-privileges"]
        args += ["--label", f"risoluto.workspace={workspace}"]
        args += [image, "bash", "-lc", ENTRYPOINT_SCRIPT]
        done = subprocess.run(
            args, capture_output=True, text=True, check=False, timeout=300, stdin=subprocess.DEVNULL
        )
    finally:  # (Risoluto removes the container itself once the agent is done)
        for leftover in (["rm", "-f", f"risoluto-{run}"], ["volume", "rm", "-f", volume]):
            subprocess.run(["docker", *leftover], capture_output=True, check=False)
    shown = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, shown
    assert READY in done.stdout, shown
    return done.stdout.split(READY, 1)[1].lstrip("\n")
