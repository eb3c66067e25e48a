"""The system layer: the locked apt closure installed, checked, and the image's user made.

It also clears the setuid/setgid bits of every file but those in `[image].allow_setuid`
(DESIGN.md §5): the agent runs with no-new-privileges anyway, but an image that is safe only
under one runtime flag is not. The base's own files (passwd, su, mount) are covered too: this
step runs on top of the base, so a chmod copies them up into this layer with the bits cleared.

The user's home is made writable by any uid (mode 1777, as /tmp): Risoluto mounts a fresh
volume on /home/agent, and Docker fills an empty volume with the image's folder there, owner
and mode included, undoing the chown its helper container did; with mode 755 only uid 1000
could write HOME (not even root, with every capability dropped).

Locked by `resolve/apt.py`: apt itself computes the closure, in a container of the base.

Recipe versions (a bump rebuilds every system layer):
- system/2: clears setuid/setgid bits on every file but `[image].allow_setuid` (which joined
  the system node's inputs), base-layer files included.
- system/3: the diff is read from the step container's overlay2 upper dir (whiteouts and
  opaque folders converted as docker does) rather than from `docker commit` + `docker save`.
- system/4: the diff is normalized against the layers below it (opaque markers and
  whiteouts of names not below, folders changed only in mtime, Podman's /etc/mtab dropped),
  so Docker's overlay2 upper dir and Podman's commit give the same layer.
- system/5: the home folder of the user it creates is mode 1777, so any uid can write HOME
  once Risoluto's fresh volume on /home/agent is filled from it.
- system/6: a file the layers below already hold alike (same mode, owners, mtime and bytes:
  a lock file apt only opened, a file dpkg rewrote unchanged) is dropped too: Docker 28's
  containerd snapshotter records no such copy-up.
- system/7: the day of the last password change in /etc/shadow is the lock's epoch's day
  (store/dated.py); installs slim, as Debian's slim images do (no documentation but
  copyright files, man pages or translations; `[system] docs = true`, locked as `docs`,
  keeps them), and writes every whiteout alike (mode 0, owner 0, the epoch).
- system/8: the slim config (kinds/slim.py) is written only when the image below lacks it
  or holds another: on a slim base (base/3) the layer carries no copy of it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Sequence
from typing import Any

from builder.core import limits
from builder.core.errors import BuildError, LockError
from builder.engine.interface import Mount, kept_container, require_success
from builder.engine.step import StepContext, download_cache_mount, hand_back
from builder.kinds.base import Base
from builder.kinds.kind import (
    Declared,
    Distro,
    Inputs,
    KindBase,
    LockContext,
    Probe,
    Probes,
    StepResult,
)
from builder.kinds.layer import capture, verify_installed
from builder.kinds.purls import debs
from builder.kinds.rules import (
    RUNTIME_COMMANDS,
    answers,
    base_upgrades,
    check_apt_runtimes,
    foreign_arch,
    system_request_inputs,
)
from builder.kinds.slim import config_script as slim_config_script
from builder.model.fields import FIX
from builder.model.inputs import Pin, SystemInputs
from builder.model.lockfile import NodeKind, NodeLock
from builder.model.spec import Provider, Spec
from builder.resolve.apt import APT_ENV, apt_update, resolve_logs, resolve_system
from builder.resolve.image import BaseFacts


def build_system(ctx: StepContext, node: NodeLock) -> StepResult:
    """Install the closure in a container of the base and capture what changed.

    dpkg runs with --force-unsafe-io, as in Debian's own Docker images: it skips the fsync
    of every unpacked file, which only matters if the machine crashes mid-install, and then
    the container is thrown away anyway. The files are the same.
    """
    engine = ctx.engine()
    inputs = node.inputs_as(SystemInputs)
    packages = {p.name: p.version for p in inputs.packages}
    install = ""
    if packages:
        pins = shlex.join(f"{n}={v}" for n, v in sorted(packages.items()))
        by_pins = f"""{apt_update()}
{APT_INSTALL} {limits.apt_options()} {pins}"""
        install = f"""{APT_CACHE_LOCK}
{from_cached_debs(inputs.packages, otherwise=by_pins)}
flock -u 9 2>/dev/null || true
"""
    slim = "" if inputs.docs else slim_config_script()
    script = f"""{slim}dpkg-query -W -f='${{Package}}=${{Version}}\\n' | sort > /tmp/before
{install}dpkg-query -W -f='${{Package}}=${{Version}}\\n' | sort > /tmp/after
echo @@installed
comm -13 /tmp/before /tmp/after
echo @@end
{user_and_workdir(inputs)}
{strip_setuid(inputs.allow_setuid or ())}
"""
    log = ctx.cache.log_path(node.name)
    env = {**APT_ENV, "SOURCE_DATE_EPOCH": str(ctx.epoch)}
    stage = ctx.stage(node.name)
    mounts = apt_mounts(ctx, stage)
    result = engine.run(
        image=stage,
        script=hand_back(mounts) + script,
        log=log,
        env=env,
        mounts=mounts,
        network=True,
    )
    with kept_container(engine, result):
        text = log.read_text(errors="replace")
        if "was not found" in text or "Unable to locate package" in text:
            msg = (
                f"system: a pinned package version is gone from the mirror ({_missing(text)}). "
                f"Run `sandbox lock --update system` to re-pin. Full log: {log}"
            )
            raise BuildError(msg)
        require_success(result, what="system: apt-get install", log=log)
        installed = text.split("@@installed", 1)[1].split("@@end", 1)[0]
        got = dict(line.split("=", 1) for line in installed.split() if "=" in line)
        verify_installed(got, packages, node=node.name)
        layer = capture(ctx, engine, result.container, node)
    return StepResult(layers=[layer], env={})


# How the step installs, by pins or from the files (`build_system` says why unsafe-io).
APT_INSTALL = "apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-unsafe-io"

# apt refuses, rather than waits, when another apt holds the shared cache's lock: steps of
# concurrent builds take turns on this lock first (flock is in util-linux, which is Essential).
ARCHIVES = "/var/cache/apt/archives"  # apt's download cache, the shared one mounted there
APT_CACHE_LOCK = f"""exec 9>{ARCHIVES}/sandbox-builder.lock
if command -v flock >/dev/null; then flock 9; fi"""


def from_cached_debs(packages: Sequence[Pin], *, otherwise: str) -> str:
    """Shell installing the locked .deb files straight from apt's download cache when every
    one is there with the lock's sha256; `otherwise` (apt-get update, then install by pins).

    A rebuild (a cold build with warm downloads, a teammate's, CI's) then needs neither the
    mirror nor its package lists: apt is shown an empty lists folder and the files, so it
    reads no index (0.6 s) and fetches none (`apt-get update`, ~1 s even when nothing
    changed), and it can install nothing that is not in the lock. It still orders the
    unpacking and configuring, so the files it writes are those of an install by pins (the
    same layer). The download cache is shared by every project and platform, so a file is
    found by its name (apt's: `name_version_arch.deb`, the epoch's colon as %3a) and trusted
    by the lock's sha256 only; a package pinned without one, or for another architecture
    (`name:arch`), takes the other way.
    """
    if any(p.sha256 is None or ":" in p.name for p in packages):
        return otherwise
    wanted = "\n".join(
        f"{p.sha256} {p.name}_{p.version.replace(':', '%3a')}"
        for p in sorted(packages, key=lambda p: p.name)
    )
    return f"""arch=$(dpkg --print-architecture) cached=/tmp/sandbox-debs.sha256 debs=
: > "$cached"
while read -r sum stem; do
  for deb in "{ARCHIVES}/${{stem}}_$arch.deb" "{ARCHIVES}/${{stem}}_all.deb" ""; do
    [ -z "$deb" ] || [ -f "$deb" ] && break
  done
  [ -n "$deb" ] || {{ cached=; break; }}
  printf '%s  %s\\n' "$sum" "$deb" >> "$cached" && debs="$debs $deb"
done <<'SANDBOX_DEBS'
{wanted}
SANDBOX_DEBS
if [ -n "$cached" ] && sha256sum --check --status "$cached"; then
  echo "installing the {len(packages)} locked .deb files from the download cache"
  mkdir -p /tmp/sandbox-no-lists/partial
  {APT_INSTALL} -o Dir::State::Lists=/tmp/sandbox-no-lists $debs
else
{otherwise}
fi"""


def apt_mounts(ctx: StepContext, stage: str) -> list[Mount]:
    """apt's downloaded packages and package lists, kept in the user-wide downloads folder so
    a rebuild (of any project) fetches only what changed. Lists depend on the sources of the
    image below, so they are kept per build environment; .deb files are named by package,
    version and architecture, so all share them. Mounts never reach the layer, so nothing
    needs cleaning."""
    lists = f"apt/lists/{stage.removeprefix('sha256:')[:12]}"
    return [
        download_cache_mount(ctx.cache, "apt/archives", ARCHIVES),
        download_cache_mount(ctx.cache, lists, "/var/lib/apt/lists"),
    ]


def user_and_workdir(inputs: SystemInputs) -> str:
    """Shell making the image's user (unless the base has one of that name) and its workdir.

    An empty `user` is the base's own User, which is left as it is; an empty `workdir` the
    base's WorkingDir. A group of the user's name that the base has already is joined.
    """
    user, workdir = shlex.quote(inputs.user), shlex.quote(inputs.workdir)
    lines = []
    if inputs.user:
        uid = inputs.uid
        if uid is None:
            msg = f"sandbox.lock: system names user {inputs.user} but no uid. {FIX}"
            raise LockError(msg)
        home = f"--create-home --shell /bin/bash {user}"
        lines += [
            f"if ! getent passwd {user} >/dev/null; then",
            f"  if getent group {user} >/dev/null; then useradd --uid {uid} --gid {user} {home}",
            f"  else useradd --uid {uid} --user-group {home}; fi",
            f"  chmod 1777 /home/{user}",  # any uid writes HOME (the module's docstring)
            "fi",
        ]
    if inputs.workdir:
        owner = f'"$(id -u {user}):$(id -g {user})"' if inputs.user else ""
        lines += [
            f"mkdir -p {workdir}",
            f"chown {owner or shlex.quote(inputs.owner or '')} {workdir}",
        ]
    return "\n".join(lines)


def strip_setuid(allowed: Sequence[str]) -> str:
    """Shell clearing setuid/setgid on every file of the root filesystem but `allowed`."""
    keep = "".join(f" ! -path {shlex.quote(_find_literal(path))}" for path in sorted(allowed))
    return f"find / -xdev -type f -perm /6000{keep} -exec chmod ug-s {{}} +"


def _find_literal(path: str) -> str:
    """`path` as a find -path pattern matching only itself (glob characters escaped)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", path)


def _missing(log_text: str) -> str:
    for line in log_text.splitlines():
        if "was not found" in line or "Unable to locate" in line:
            return line.strip().removeprefix("E: ")
    return "see the log"


class System(KindBase):
    """The system layer on the base: `[system].packages`, the user and the workdir."""

    name = "system"
    stack = NodeKind.SYSTEM
    recipe = "system/8"
    previous = ("system/7", "system/6", "system/5", "system/4", "system/3", "system/2", "system/1")
    inputs = SystemInputs

    def declare(self, spec: Spec) -> list[Declared]:
        return [Declared(name=self.name, needs=(Base.name,))]

    def prefix(self, node: str) -> str | None:
        return None

    def lock(self, ctx: LockContext, name: str) -> Inputs:
        spec, base = ctx.spec, ctx.nodes[Base.name]
        request_inputs = system_request_inputs(spec, base.inputs)
        request: list[str] = request_inputs["request"]
        # Not part of the request compared below: they change the layer, not the apt closure,
        # so a lock made before they existed keeps its pins.
        setuid: dict[str, Any] = {"allow_setuid": sorted(spec.image.allow_setuid)}
        setuid |= {"docs": True} if spec.system_docs else {}
        old_base, old = ctx.previous.get(Base.name), ctx.previous.get(name)
        old_names = [p["name"] for p in old.inputs["packages"]] if old else []
        # `--update NAME` of a package the base installed (a security fix, say): the system
        # layer upgrades it, so the base's pins stay as debootstrap resolved them.
        upgrades = base_upgrades(base, ctx.update, request)
        same_request = (
            old is not None
            and old_base is not None
            and base.key == old_base.key
            and answers(old.inputs, request_inputs)
        )
        if old and same_request and not ctx.wanted(name, old_names + upgrades):
            ctx.progress.say(f"  kept      system ({len(old_names)} packages)")
            kept = {k: v for k, v in old.inputs.items() if k != "docs"}
            return {**kept, **setuid}
        keep: dict[str, str] = {}
        if old and same_request and ctx.update:
            keep = {
                p["name"]: p["version"]
                for p in old.inputs["packages"]
                if p["name"] not in ctx.update
            }
        packages: list[dict[str, Any]] = []
        if request or upgrades:
            ctx.progress.say(f"  resolving system ({len(request)} requested) ...")
            image = ctx.stage([Base.name])
            foreign = foreign_arch(spec, ctx.platform, base.inputs) if ctx.foreign else None
            with ctx.progress.watch(name, resolve_logs(ctx.cache.logs, foreign)):
                packages = resolve_system(
                    request + upgrades,
                    keep=keep,
                    engine=ctx.engine(),
                    image=image,
                    log_dir=ctx.cache.logs,
                    foreign=foreign,
                )
        check_apt_runtimes(spec, packages, base=BaseFacts.of(base.inputs).packages)
        ctx.progress.say(f"  resolved  system ({len(packages)} packages in the closure)")
        return {**request_inputs, **setuid, "packages": packages}

    def build(self, ctx: StepContext, node: NodeLock) -> StepResult:
        return build_system(ctx, node)

    def pins(self, node: NodeLock, distro: Distro) -> Iterator[tuple[str, dict[str, Any]]]:
        return debs(node.inputs_as(SystemInputs).packages, distro)

    def probes(self, node: NodeLock, spec: Spec) -> Probes:
        """The runtimes Debian's packages provide (`provider = "apt"`: no node of their own)."""
        apt = [r.name for r in spec.runtimes if r.provider == Provider.APT]
        return Probes(run=[Probe(check=f"runtime.{r}", argv=RUNTIME_COMMANDS[r]) for r in apt])
