"""`sandbox check`: prove a built image meets the baseline and runs what it declares (DESIGN.md §8).

Static checks read the image config and its layer tars (from the cache when this build made
them, else from `docker save`): the user is not root, no port is exposed, no setuid/setgid
file is left but the allowed ones, and no layer holds a host CA certificate, a `.netrc` or the
value of a `[tools.bin]` credential (scan.py). Then one container runs the probes
(probes.py) the way Risoluto would spawn an agent from the overlay (spawn.py), through the
image's ENTRYPOINT in `bash -lc` (and each `--shell`'s login shell):
its uid:gid (`--uid`; an arbitrary non-root one by default), its capabilities, HOME on a fresh
volume chowned first, the workspace read-write, the default network, and with an egress
allowlist NET_ADMIN and its entrypoint's iptables rules.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from builder.check import probes, scan
from builder.check.report import CheckResult, Report
from builder.check.scan import Hit, LayerRef
from builder.core import certs
from builder.core.certs import ca_bundle
from builder.core.errors import CheckError
from builder.engine.interface import Engine, in_step
from builder.image.profile import HISTORY, is_profile_layer
from builder.model.lockfile import NodeLock
from builder.model.spec import Spec
from builder.realize import history
from builder.store.cache import Cache
from builder.store.diffs import layers_of_saved_image

_MIN_SECRET = 8  # shorter values would match by chance


def check_project(
    *,
    spec: Spec,
    nodes: Mapping[str, NodeLock],
    cache: Cache,
    engine: Engine,
    image: str | None,
    environ: Mapping[str, str],
    user: tuple[int, int] | None = None,
    shells: Sequence[str] = (),
) -> Report:
    """Check `image` (default: this project's last build) against `spec` and its lock, its
    probes run as `user` (the uid:gid Risoluto runs as; None: an arbitrary non-root one) in
    `bash -lc` and in each login shell of `shells`."""
    started = time.monotonic()
    ref = image or last_build(cache, spec, nodes)
    with in_step("check"):
        info = engine.inspect(ref)
        results = config_checks(info.get("Config") or {})
        with image_layers(engine=engine, cache=cache, ref=ref, info=info, nodes=nodes) as layers:
            found = scan.survey(layers)
            results += setuid_check(found.setuid, spec.image.allow_setuid)
            results += leak_checks(
                layers, public=found.public, spec=spec, environ=environ, host_bundle=ca_bundle()
            )
        results += probes.run_probes(
            engine=engine,
            cache=cache,
            spec=spec,
            nodes=nodes,
            ref=ref,
            user=user,
            config=info.get("Config") or {},
            shells=shells,
        )
    return Report(image=str(info["Id"]), results=results, seconds=time.monotonic() - started)


def last_build(cache: Cache, spec: Spec, nodes: Mapping[str, NodeLock]) -> str:
    """The image of this project's last build, which must be a build of the current lock."""
    record = history.load(cache, spec.path)
    if record is None:
        msg = (
            f"no image to check: {spec.path} has no build in {cache.root}. Run `sandbox build` "
            "first, or name an image with `sandbox check --image REF`"
        )
        raise CheckError(msg)
    built = {name: node.get("key") for name, node in record.nodes.items()}
    if built != {name: node.key for name, node in nodes.items()}:
        msg = (
            f"the last build ({record.image_id}) is of an older sandbox.lock. Run `sandbox "
            "build` first, or check that image anyway with `sandbox check --image REF`"
        )
        raise CheckError(msg)
    return record.engine_id or record.image_id


def config_checks(config: Mapping[str, Any]) -> list[CheckResult]:
    user = str(config.get("User") or "")
    is_root = user.split(":")[0] in ("", "root", "0")
    ports = sorted(config.get("ExposedPorts") or {})
    return [
        CheckResult(
            check="user",
            ok=not is_root,
            detail=f"runs as {user or 'root (no User set)'}"
            + ("; set [image].user to a non-root user" if is_root else ""),
        ),
        CheckResult(
            check="exposed ports",
            ok=not ports,
            detail=f"{', '.join(ports)}: an agent sandbox serves nothing; drop EXPOSE"
            if ports
            else "none",
        ),
    ]


def setuid_check(found: Mapping[str, str], allowed: tuple[str, ...]) -> list[CheckResult]:
    bad = [f"{path} (from {layer})" for path, layer in found.items() if path not in allowed]
    kept = [path for path in found if path in allowed]
    if bad:
        detail = (
            f"{', '.join(bad[:8])}{' ...' if len(bad) > 8 else ''}: rebuild (the system step "
            "clears them) or list the path in [image].allow_setuid"
        )
    else:
        detail = f"only allowed: {', '.join(kept)}" if kept else "none"
    return [CheckResult(check="setuid/setgid files", ok=not bad, detail=detail)]


def leak_checks(
    layers: list[LayerRef],
    *,
    public: set[bytes],
    spec: Spec,
    environ: Mapping[str, str],
    host_bundle: Path | None,
) -> list[CheckResult]:
    """Host CA certificates, .netrc files and [tools.bin] credentials in any layer; `public`
    holds the image's own public roots (scan.survey)."""
    results = []
    ca: dict[bytes, str] = {}
    ca_result = None
    if host_bundle is None:
        ca_result = CheckResult(check="host CA certificates", ok=True, detail="no host bundle")
    else:
        public = certs.public_on_host() | public
        if public:
            own = certs.host_only(host_bundle.read_bytes(), public)
            ca = {der: certs.describe(der) for der in own}
        else:
            detail = "warning: no public CA set on the host or in the image to tell them apart"
            ca_result = CheckResult(
                check="host CA certificates", ok=True, detail=detail, warning=True
            )
    secrets: dict[str, bytes] = {}
    notes = []
    for tool in spec.tools.bin:
        value = environ.get(tool.auth_env or "", "")
        what = f"${tool.auth_env} of tools.bin.{tool.name}"
        if len(value) >= _MIN_SECRET:
            secrets[what] = value.encode()
        elif tool.auth_env:
            notes.append(f"{what} {'is too short to look for' if value else 'is not set'}")
    hits = scan.find_leaks(layers, ca=ca, secrets=secrets)
    if ca_result is None:
        names = ", ".join(sorted(ca.values())) or "none: the host has no CA of its own"
        results.append(_hits("host CA certificates", hits, "host CA", f"looked for {names}"))
    else:
        results.append(ca_result)
    results.append(_hits(".netrc files", hits, ".netrc", ""))
    if secrets or notes:
        looked = [f"looked for {', '.join(secrets)}"] if secrets else []
        results.append(_hits("credentials", hits, "$", "; ".join(looked + notes)))
    return results


def _hits(check: str, hits: list[Hit], prefix: str, note: str) -> CheckResult:
    mine = [h for h in hits if h.what.startswith(prefix)]
    if not mine:
        detail = f"none in any layer ({note})" if note else "none in any layer"
        return CheckResult(check=check, ok=True, detail=detail)
    shown = "; ".join(f"{h.what} at {h.path} in layer {h.layer}" for h in mine[:5])
    more = f" (and {len(mine) - 5} more)" if len(mine) > 5 else ""
    fix = "it must stay a build-time mount: find the step that copied it and report it"
    return CheckResult(check=check, ok=False, detail=f"{shown}{more}; {fix}")


@contextmanager
def image_layers(
    *,
    engine: Engine,
    cache: Cache,
    ref: str,
    info: Mapping[str, Any],
    nodes: Mapping[str, NodeLock],
) -> Iterator[list[LayerRef]]:
    """The image's layer tars, bottom first, named by the node that made them; those the cache
    lacks (an image derived from a build) come from `docker save`."""
    owner: dict[str, str] = {}
    for name, node in nodes.items():
        entry = cache.entry(node.key)
        for layer in entry.layers if entry else ():
            owner.setdefault(layer.diff_id, name)
    diff_ids = list(info["RootFS"]["Layers"])
    paths = [cache.layer_path(d) for d in diff_ids]
    names = [
        owner.get(d)
        or (HISTORY if is_profile_layer(path) else None)
        or f"#{i + 1} ({d.removeprefix('sha256:')[:12]}, not from sandbox.lock)"
        for i, (d, path) in enumerate(zip(diff_ids, paths, strict=True))
    ]
    work = None
    try:
        if not all(path.exists() for path in paths):
            work = cache.scratch("check-")
            engine.save(ref, work / "image.tar")
            saved = layers_of_saved_image(work / "image.tar", work)
            (work / "image.tar").unlink()
            paths = [p if p.exists() else s for p, s in zip(paths, saved, strict=True)]
        yield [LayerRef(name=n, path=p) for n, p in zip(names, paths, strict=True)]
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
