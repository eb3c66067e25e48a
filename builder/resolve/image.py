"""What an image base has, read at lock: its config, distribution, packages, users, programs.

`FROM` keeps the base's config and everything installed in it; so does `sandbox build`, and
the lock records what that is, so a reviewer sees it and the build needs nothing but the lock:
- `config`: the fields of `docker image inspect`'s Config that `FROM` acts on
  (builder/model/inherit.py decides what the image keeps of them);
- `os`: /etc/os-release's ID, VERSION_ID and VERSION_CODENAME;
- `packages`: dpkg's installed packages with their versions (the system closure is resolved
  against them by apt itself; a `provider = "apt"` runtime the base has is satisfied by it);
- `users`: /etc/passwd's names and uids (so `[image].user` never takes a uid the base gives
  another user);
- `programs`: the python3, node and npm on the base's PATH with their versions (pip and npm
  tools use them when no runtime layer is declared).

One container of the base runs one shell script as root (whatever the base's USER and
ENTRYPOINT are). A base we cannot extend is refused here, naming what is supported: one
without /bin/sh, or without dpkg and apt-get (Alpine's apk, say). Debian, Ubuntu and their
derivatives all take the same apt path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.core.errors import ResolutionError
from builder.engine.interface import Engine, kept_container

PROGRAMS = ("python3", "node", "npm")
SUPPORTED = (
    "sandbox-builder extends Debian and Ubuntu based images (and their derivatives): images "
    "with /bin/sh, dpkg and apt-get. Use such an image as [base].image, or build the base "
    'with `bootstrap = { suite = "bookworm" }`'
)
_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*")

_PROBE = (
    """echo @@os
cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null || true
echo @@tools
for t in dpkg-query apt-get apk dnf yum; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done
echo @@dpkg
if command -v dpkg-query >/dev/null 2>&1; then
  dpkg-query -W -f='${db:Status-Status} ${Package} ${Version}\\n' 2>/dev/null || true
fi
echo @@users
cat /etc/passwd 2>/dev/null || true
echo @@programs
T=
command -v timeout >/dev/null 2>&1 && T="timeout 20"
for p in """
    + " ".join(PROGRAMS)
    + """; do
  path=$(command -v "$p" 2>/dev/null) || continue
  printf '%s %s %s\\n' "$p" "$path" "$($T "$path" --version </dev/null 2>&1 | head -n 1)"
done
echo @@end
"""
)


@dataclass(frozen=True, kw_only=True)
class BaseFacts:
    """What the base node's locked inputs say the base has (a bootstrap base: its packages)."""

    packages: Mapping[str, str] = field(default_factory=dict)  # dpkg name -> version
    programs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # -> path, version

    @classmethod
    def of(cls, inputs: Mapping[str, Any]) -> BaseFacts:
        return cls(
            packages={str(p["name"]): str(p["version"]) for p in inputs.get("packages", [])},
            programs=dict(inputs.get("programs", {})),
        )


# What the lock records of a base image's config: the fields `FROM` acts on (inherit.py).
RECORDED = (
    *("Entrypoint", "Cmd", "Volumes", "StopSignal", "Healthcheck", "Shell"),
    *("Env", "Labels", "User", "WorkingDir", "ExposedPorts", "OnBuild"),
)


def recorded_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """What the lock records of `docker image inspect`'s Config: the fields `FROM` acts on,
    empty ones left out (TOML has no null), Volumes and ExposedPorts as sorted lists."""
    found: dict[str, Any] = {}
    for name in RECORDED:
        value = raw.get(name)
        if value in (None, "", [], {}):
            continue
        if name in ("Volumes", "ExposedPorts"):
            value = sorted(value)
        elif name == "Labels":
            value = dict(sorted(value.items()))
        found[name] = value
    return found


def describe_image(
    *, image: str, pinned: str, platform: str, engine: Engine, log: Path
) -> dict[str, Any]:
    """The base node's inputs besides its pin: config, os, packages, users, programs."""
    if engine.image_id(pinned) is None:
        engine.pull(pinned, platform)
    config = recorded_config(engine.inspect(pinned).get("Config") or {})
    result = engine.run(image=pinned, script=_PROBE, log=log, env={}, mounts=[], network=False)
    with kept_container(engine, result):
        text = log.read_text(errors="replace")
    if result.exit_code != 0 or "@@end" not in text:
        tail = " ".join(text.strip().splitlines()[-3:])[:300] or f"exit {result.exit_code}"
        msg = f"base image {image} cannot be extended: /bin/sh does not run in it ({tail}). "
        raise ResolutionError(msg + SUPPORTED)
    return {"config": config, **parse_probe(text, image=image)}


def parse_probe(text: str, *, image: str) -> dict[str, Any]:
    """The facts in the probe script's output; a base without dpkg and apt is refused."""
    sections = _sections(text)
    os_release = _os_release(sections.get("os", []))
    tools = set(sections.get("tools", []))
    if not {"dpkg-query", "apt-get"} <= tools:
        found = ", ".join(sorted(tools - {"dpkg-query", "apt-get"})) or "no package manager"
        name = os_release.get("name") or os_release.get("id") or "an unknown distribution"
        msg = (
            f"base image {image} ({name}) cannot be extended: it has no dpkg and apt-get "
            f"(it has {found}). "
        )
        raise ResolutionError(msg + SUPPORTED)
    packages = []
    for line in sections.get("dpkg", []):
        words = line.split()
        if len(words) == 3 and words[0] == "installed":
            packages.append({"name": words[1], "version": words[2]})
    users = []
    for line in sections.get("users", []):
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            users.append({"name": parts[0], "uid": int(parts[2])})
    programs = {}
    for line in sections.get("programs", []):
        name, _, rest = line.partition(" ")
        path, _, said = rest.partition(" ")
        version = _VERSION.search(said)
        if name in PROGRAMS and path.startswith("/") and version:
            programs[name] = {"path": path, "version": version.group()}
    os_release.pop("name", None)
    return {
        "os": os_release,
        "packages": sorted(packages, key=lambda p: p["name"]),
        "users": sorted(users, key=lambda u: (u["uid"], u["name"])),
        "programs": programs,
    }


def _sections(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("@@"):
            current = found.setdefault(line[2:].strip(), [])
        elif current is not None and line.strip():
            current.append(line.strip())
    return found


def _os_release(lines: list[str]) -> dict[str, str]:
    """id, version_id, codename (and name, for messages) of an os-release file."""
    values = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value.strip().strip("\"'")
    wanted = {
        "id": "ID",
        "version_id": "VERSION_ID",
        "codename": "VERSION_CODENAME",
        "name": "PRETTY_NAME",
    }
    return {ours: values[theirs] for ours, theirs in wanted.items() if values.get(theirs)}
