"""How Risoluto would `docker run` an agent from this overlay, for `sandbox check` (DESIGN.md §8).

Read off Risoluto's src/docker/spawn.ts (`buildDockerRunArgs`, `buildInitCacheVolumeArgs`)
and the defaults it fills in for what the overlay leaves out (src/config/defaults.ts):

- `--user <uid:gid>`: Risoluto's own process's (0:0 when it runs as root, 1000:1000 in its own
  image); the check probes an arbitrary non-root uid unless told (`--uid`).
- `--workdir <workspace>`, the workspace and the archive folder bind-mounted read-write at
  their own paths, owned by that uid.
- HOME=/home/agent on a fresh named volume, which a helper container chowns to the uid:gid
  first (Risoluto's runs alpine; here the image itself, as root, does), and CODEX_HOME under it.
- `--add-host=host.docker.internal:host-gateway`; `--network <network>` when set, else
  Docker's default bridge.
- `--memory`, `--memory-reservation`, `--memory-swap`, `--cpus` and `--tmpfs
  /tmp:exec,size=<tmpfs_size>`, always (Risoluto's defaults when unset).
- `--cap-drop=ALL` (drop_capabilities, default true), `--security-opt=no-new-privileges`
  (default true), `--runtime=runsc` (gvisor), `--security-opt=seccomp=<profile>`.
- With an egress allowlist: `--cap-add=NET_ADMIN` and RISOLUTO_EGRESS_ALLOWLIST, which its
  entrypoint (`bash -lc`, under `set -euo pipefail`) turns into iptables OUTPUT rules:
  `EGRESS_RULES` is that part of it, as its lines mean it. (Risoluto f7ed42e joins the lines
  with "; ", which makes `then;` and `do;` of them: bash refuses that whole entrypoint, so
  there an allowlist keeps every agent from starting. Not reproduced: it is Risoluto's bug.)

Left out: the overlay's extra_mounts (host paths of the orchestrator's machine), the log
driver (the check reads the container's output back), the Codex config and auth variables.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.check.report import CheckResult
from builder.core.errors import CheckError
from builder.engine.interface import Confinement, Mount
from builder.orchestrator.overlay import RESOURCE_DEFAULTS

EGRESS, HOME_CHECK, WORKSPACE = "overlay egress allowlist", "home (CODEX_HOME)", "workspace"
HOME = "/home/agent"
CODEX_HOME = "/home/agent/.codex-runtime"
GATEWAY = {"host.docker.internal": "host-gateway"}
# Risoluto's entrypoint, the part an egress allowlist adds (spawn.ts buildEntrypointScript).
EGRESS_RULES = """set -euo pipefail
if command -v iptables >/dev/null 2>&1 && [ -n "${RISOLUTO_EGRESS_ALLOWLIST:-}" ]; then
  iptables -A OUTPUT -o lo -j ACCEPT
  iptables -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  iptables -A OUTPUT -p udp --dport 53 -j ACCEPT
  iptables -A OUTPUT -p tcp --dport 53 -j ACCEPT
  for domain in $RISOLUTO_EGRESS_ALLOWLIST; do
    for ip in $(getent hosts "$domain" 2>/dev/null | awk '{print $1}' | head -5); do
      iptables -A OUTPUT -d "$ip" -j ACCEPT
    done
  done
  iptables -A OUTPUT -j REJECT 2>/dev/null || iptables -A OUTPUT -j DROP
fi
"""
# What the check adds after it: one line saying what the rules are, for the report.
EGRESS_SCRIPT = (
    EGRESS_RULES
    + """rules=$(iptables -S OUTPUT)
all=$(printf '%s\\n' "$rules" | grep -c '^-A' || :)
hosts=$(printf '%s\\n' "$rules" | grep -c '^-A OUTPUT -d ' || :)
printf '%s rules in OUTPUT (%s for allowlisted addresses), last: %s\\n' "$all" "$hosts" \\
  "$(printf '%s\\n' "$rules" | tail -n 1)"
"""
)


@dataclass(frozen=True, kw_only=True)
class Spawn:
    """The agent container Risoluto would start, and what the check reports of it."""

    confinement: Confinement
    egress: tuple[str, ...]  # the allowlist: the iptables rules run first
    uid: int

    def flags(self) -> str:
        """The `docker run` flags, as Risoluto would pass them (for the report)."""
        c = self.confinement
        flags = [f"--user {c.user}", f"--workdir {c.workdir}", f"-v <fresh volume>:{HOME}"]
        flags += [f"-v {m.source}:{m.target}" for m in c.mounts]
        flags += [f"--add-host={host}:{to}" for host, to in sorted(c.extra_hosts.items())]
        flags.append(f"--network {c.network}" if c.network else "--network <default bridge>")
        flags += [f"--memory {c.memory}", f"--memory-reservation {c.memory_reservation}"]
        flags += [f"--memory-swap {c.memory_swap}", f"--cpus {c.cpus}"]
        flags += [f"--tmpfs {path}:{options}" for path, options in c.tmpfs.items()]
        flags += [f"--cap-drop={cap}" for cap in c.cap_drop]
        flags += [f"--security-opt={o.partition('=')[0]}" for o in c.security_opt]
        flags += [f"--runtime={c.runtime}"] if c.runtime else []
        flags += [f"--cap-add={cap}" for cap in c.cap_add]
        return " ".join(flags)


def parse_uid(text: str) -> tuple[int, int]:
    """`--uid`'s value: "UID" or "UID:GID" (GID defaults to UID)."""
    uid, colon, gid = text.partition(":")
    if not uid.isdigit() or not (gid if colon else uid).isdigit():
        msg = f"--uid {text!r}: give the uid Risoluto runs as: UID or UID:GID (e.g. 0, 1000:1000)"
        raise CheckError(msg)
    return int(uid), int(gid or uid)


def spawn_for(
    settings: Mapping[str, Any],
    *,
    user: tuple[int, int],
    workspace: Path,
    archive: Path,
    runtime_available: bool,
) -> Spawn:
    """Risoluto's agent container for the overlay's `codex.sandbox` `settings`."""
    security = settings.get("security") or {}
    resources = {**RESOURCE_DEFAULTS, **(settings.get("resources") or {})}
    egress = tuple(settings.get("egress_allowlist") or ())
    uid, gid = user
    options = []
    if security.get("no_new_privileges", True):
        options.append("no-new-privileges")
    if security.get("seccomp_profile"):
        options.append(f"seccomp={_seccomp(security['seccomp_profile'])}")
    env = {"HOME": HOME, "CODEX_HOME": CODEX_HOME}
    if egress:
        env["RISOLUTO_EGRESS_ALLOWLIST"] = " ".join(egress)
    confinement = Confinement(
        user=f"{uid}:{gid}",
        workdir=str(workspace),
        env=env,
        mounts=(
            Mount(source=str(workspace), target=str(workspace), read_only=False),
            Mount(source=str(archive), target=str(archive), read_only=False),
        ),
        home=HOME,
        tmpfs={"/tmp": f"exec,size={resources['tmpfs_size']}"},
        cap_drop=("ALL",) if security.get("drop_capabilities", True) else (),
        cap_add=("NET_ADMIN",) if egress else (),
        security_opt=tuple(options),
        runtime="runsc" if security.get("gvisor") and runtime_available else None,
        network=settings.get("network") or None,
        extra_hosts=GATEWAY,
        memory=resources["memory"],
        memory_reservation=resources["memory_reservation"],
        memory_swap=resources["memory_swap"],
        cpus=_cpus(resources["cpus"]),
    )
    return Spawn(confinement=confinement, egress=egress, uid=uid)


def own_folder(path: Path, user: tuple[int, int]) -> None:
    """Give `path` to the agent's uid, as Risoluto's workspaces are its own (else open it)."""
    try:
        os.chown(path, *user)
        path.chmod(0o755)
    except PermissionError:
        path.chmod(0o777)  # not root: the uid cannot be given the folder, so let it write


def _cpus(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        msg = f'[sandbox.resources] cpus = {text!r}: `docker run --cpus` takes a number, e.g. "2"'
        raise CheckError(msg) from None


def _seccomp(profile: str) -> str:
    """The profile's JSON, as `docker run --security-opt seccomp=PATH` sends it."""
    try:
        return json.dumps(json.loads(Path(profile).read_text()))
    except (OSError, ValueError) as exc:
        msg = (
            f"seccomp_profile {profile!r} cannot be read as JSON here ({exc}); Risoluto passes "
            "it to `docker run`, which reads it on the orchestrator's host: run the check "
            "there, or fix the path in [sandbox.security]"
        )
        raise CheckError(msg) from exc


def entrypoint_result(
    check: str, code: int, first: str, uid: int, chosen: bool = True
) -> CheckResult | None:
    """What the probe of one of the entrypoint's steps (`check`, its exit `code` and first
    line of output) means for the agent; None for the other probes. `chosen`: the uid is the
    one Risoluto runs as (`--uid`), not the arbitrary default: only then is an allowlist that
    needs root a failure rather than a warning."""
    first = first[:160]
    ok, detail = code == 0, first
    if check == EGRESS:
        if code == 127:
            detail = (
                "iptables is not in the image: Risoluto's entrypoint then skips the rules "
                "without a word and the agent reaches every host. Add iptables to [system] "
                "packages"
            )
        elif not ok and uid != 0:
            detail = (
                f"as uid {uid} iptables cannot set the rules ({first}): Risoluto's entrypoint "
                "runs them under set -euo pipefail, so it exits before the agent starts. The "
                "allowlist works only when Risoluto runs as root; if it does, check with --uid 0"
            )
            if not chosen:
                detail = f"warning: {detail} (a failure once --uid says Risoluto's uid)"
                return CheckResult(check=check, ok=True, detail=detail, warning=True)
        elif not ok:
            detail = (
                f"the entrypoint's iptables rules failed (exit {code}: {first}), so it exits "
                "before the agent starts"
            )
        elif "(0 for allowlisted" in first:
            detail = (
                f"warning: no allowlisted host resolved here (getent hosts), so only DNS "
                f"gets out: {first}"
            )
            return CheckResult(check=check, ok=True, detail=detail, warning=True)
    elif check == HOME_CHECK and not ok:
        detail = (
            f"as uid {uid} the entrypoint cannot make $CODEX_HOME in HOME, a fresh volume "
            f"({first}), so it exits before the agent starts. Docker fills an empty volume "
            "with the image's /home/agent and its owner: leave /home/agent out of the image, "
            "or let any uid write it"
        )
    elif check == WORKSPACE and not ok:
        detail = f"as uid {uid} the agent cannot write its workspace ({first})"
    else:
        return None
    return CheckResult(check=check, ok=ok, detail=detail)
