"""What an image keeps of its base's config, as `FROM` does, and what ours replaces.

The one precedence rule (docs/dockerfiles.md, "Extend your orchestrator's image"): the image
starts from the base image's config as `sandbox lock` recorded it (`config` of the base node),
then ours goes on top:

- Entrypoint, Cmd, Volumes, StopSignal, Healthcheck and Shell: the base's, as they are. A base
  with neither Entrypoint nor Cmd (a bootstrapped one) gets Cmd ["/bin/bash"].
- Env: the base's, then each node's in stack order (PATH entries prepended to the base's
  PATH), then `[image].env`; a name set twice takes the later value.
- Labels: the base's (but for this tool's own `dev.sandbox-builder.*` and the standard
  `org.opencontainers.image.*`, which describe the base's build, not this one: the image names
  its base in `base.name` and `base.digest`), then ours; ours win on the same key.
- User and WorkingDir: `[image].user` / `workdir` when the spec sets them, else the base's; a
  base that runs as root (or sets no User) gets the default user `agent`, never root.
- ExposedPorts: dropped (the baseline: an agent sandbox serves nothing); OnBuild: not run.
  `sandbox lock` says so.

Everything here is a function of the lock, so the image ID still depends on the lock alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from builder.core.errors import ResolutionError
from builder.model.inputs import BaseInputs, ImageBase, SystemInputs
from builder.model.spec import ImageSpec

OUR_LABELS = "dev.sandbox-builder."
# Labels of the base about the base's own build (its source, revision, version, created ...).
NOT_INHERITED = (OUR_LABELS, "org.opencontainers.image.")
DEFAULT_CMD = ["/bin/bash"]
# Config fields `FROM` carries over that the image keeps as the base has them.
KEPT = ("Entrypoint", "Cmd", "Volumes", "StopSignal", "Healthcheck", "Shell")


def container_config(
    *,
    base: Mapping[str, Any],
    env: Mapping[str, str],
    labels: Mapping[str, str],
    user: str = "",
    workdir: str = "",
) -> dict[str, object]:
    """The `config` of the image: `base` (as the lock records it) with ours on top.

    `env` is the image's whole env (base_env composed with the nodes' and the spec's), `user`
    and `workdir` the effective ones (effective_user, effective_workdir). With an empty `base`
    this is the config every bootstrapped image has had: Env, Cmd, Labels, User, WorkingDir.
    """
    config: dict[str, object] = {
        "Env": [f"{k}={v}" for k, v in sorted(env.items())],
        "Labels": dict(sorted({**inherited_labels(base), **labels}.items())),
    }
    for field in KEPT:
        if field in base:
            config[field] = base[field]
    if "Entrypoint" not in base and "Cmd" not in base:
        config["Cmd"] = DEFAULT_CMD
    if "Volumes" in config:
        config["Volumes"] = {path: {} for path in base["Volumes"]}
    if user:
        config["User"] = user
    if workdir:
        config["WorkingDir"] = workdir
    return config


def base_env(base: Mapping[str, Any]) -> dict[str, str]:
    """The base's Env as a mapping (an entry without `=` names nothing and is dropped)."""
    return dict(e.split("=", 1) for e in base.get("Env", []) if "=" in e)


def inherited_labels(base: Mapping[str, Any]) -> dict[str, str]:
    """The base's labels that carry over: all but those about the base's own build."""
    labels: Mapping[str, str] = base.get("Labels", {})
    return {k: v for k, v in labels.items() if not k.startswith(NOT_INHERITED)}


def effective_user(system: SystemInputs, base: Mapping[str, Any]) -> str:
    """The image's User: the one the system node made or reused, else the base's."""
    return str(system.user or base.get("User", ""))


def effective_workdir(system: SystemInputs, base: Mapping[str, Any]) -> str:
    """The image's WorkingDir: the one the system node made, else the base's."""
    return str(system.workdir or base.get("WorkingDir", ""))


def recorded_config(base: BaseInputs) -> Mapping[str, Any]:
    """The base image's config as the lock recorded it; empty for a bootstrap base."""
    return base.config or {} if isinstance(base, ImageBase) else {}


def is_root(user: str) -> bool:
    """Whether a Docker USER value (`name`, `uid`, `name:group`, `uid:gid`) runs as root."""
    return user.split(":", 1)[0] in ("", "root", "0")


def dropped(base: Mapping[str, Any]) -> list[str]:
    """What of the base's config the image does not keep, said as `sandbox lock` prints it."""
    notes = []
    if base.get("ExposedPorts"):
        ports = ", ".join(base["ExposedPorts"])
        notes.append(f"the base exposes {ports}; the image exposes no port (the security baseline)")
    if base.get("OnBuild"):
        notes.append(
            f"the base's {len(base['OnBuild'])} ONBUILD trigger(s) are not run (they are "
            "Dockerfile steps); add what they do to sandbox.toml"
        )
    return notes


@dataclass(frozen=True, kw_only=True)
class UserChoice:
    """Who the image runs as, settled at lock from the spec and what the base has."""

    user: str  # the user the system node makes (or finds in the base); "" = the base's User
    uid: int | None  # its uid (None when the base's User is kept)
    workdir: str  # the folder the system node makes; "" = the base's WorkingDir
    owner: str  # chown's argument for that folder when the base's User is kept, else ""
    note: str  # what `sandbox lock` says about it; "" when nothing differs from the spec


def choose_user(image: ImageSpec, base: BaseInputs) -> UserChoice:
    """The user and workdir the image gets on the base whose locked inputs are `base`.

    `[image].user` (or, when it is unset and the base runs as root, the default `agent`) is
    made unless the base already has a user of that name, which is reused; a uid the base
    already gives another user is not reused: the user gets the next free one. Unset
    `[image].user` on a base with a non-root User keeps the base's. Never root.
    """
    config = recorded_config(base)
    known = base.users if isinstance(base, ImageBase) else None
    users = {u.name: u.uid for u in known or ()}
    base_user = str(config.get("User", ""))
    workdir = image.workdir
    if "workdir" in image.inherit and config.get("WorkingDir"):
        workdir = ""
    if "user" in image.inherit and not is_root(base_user):
        return UserChoice(
            user="",
            uid=None,
            workdir=workdir,
            owner=base_user if workdir else "",
            note=f"the image runs as the base's user {base_user} ([image].user is not set)",
        )
    name = image.user
    why = "the base runs as root; " if "user" in image.inherit else ""
    if name in users:
        if users[name] == 0:
            msg = (
                f"[image].user {name!r} is uid 0 (root) in the base image. The sandbox runs "
                'as a non-root user: choose another name, e.g. user = "agent"'
            )
            raise ResolutionError(msg)
        note = f"{why}user {name} is the base's own (uid {users[name]}): reused"
        return UserChoice(user=name, uid=users[name], workdir=workdir, owner="", note=note)
    holder = {uid: user for user, uid in sorted(users.items(), reverse=True)}
    uid = image.uid
    note = f"{why}the image runs as {name} (uid {uid}), made by the system layer" if why else ""
    if uid in holder:
        free = next(u for u in range(uid + 1, 60000) if u not in holder)
        note = f"{why}uid {uid} is {holder[uid]}'s in the base, so user {name} gets uid {free}"
        uid = free
    return UserChoice(user=name, uid=uid, workdir=workdir, owner="", note=note)
