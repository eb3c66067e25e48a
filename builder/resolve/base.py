"""Pinning the base node: a bootstrap package list, or an image reference's digest.

- `bootstrap`: debootstrap itself resolves the package set (`--print-debs`); each package's
  version and sha256 come from the same signed Packages index debootstrap read, and the
  suite's Release date becomes the lock's source_date_epoch.
- `image`: a reference with a registry host is pinned to its manifest digest; any other
  reference to the image ID of the local image (DESIGN.md §7: never a moving tag). For a
  platform other than this machine's, the reference must name an image index (or manifest
  list) in a registry: the pin is that platform's own manifest in it, read from the
  registry (a local image has one platform, this machine's).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from builder.core import limits, proc
from builder.core.errors import ResolutionError
from builder.engine.interface import Engine
from builder.model.spec import BaseSpec, Bootstrap
from builder.net.registry import Registry
from builder.resolve.debian import parse_stanzas


def resolve_base(
    base: BaseSpec, *, platform: str, engine: Engine | None, foreign: bool = False
) -> dict[str, Any]:
    """The locked inputs of the base node (`foreign`: `platform` is not this machine's)."""
    if base.bootstrap is not None:
        return resolve_bootstrap(base.bootstrap, platform=platform)
    assert base.image is not None
    if foreign:
        return resolve_foreign_image(base.image, platform=platform)
    assert engine is not None
    return resolve_image(base.image, platform=platform, engine=engine)


def resolve_bootstrap(boot: Bootstrap, *, platform: str) -> dict[str, Any]:
    arch = platform.split("/")[1]
    work = Path(tempfile.mkdtemp(prefix="sandbox-debootstrap-"))
    try:
        out = proc.run(
            [
                "debootstrap",
                "--print-debs",
                "--keep-debootstrap-dir",
                f"--variant={boot.variant}",
                f"--arch={arch}",
                boot.suite,
                str(work / "root"),
                boot.mirror,
            ],
            error=ResolutionError,
            what=f"resolving the {boot.suite} bootstrap package set with debootstrap",
            env={"WGETRC": str(limits.write_wgetrc(work))},
            hint=limits.network_hint(),
        )
        names = sorted(set(out.split()))
        lists = work / "root" / "var" / "lib" / "apt" / "lists"
        index = {
            s["Package"]: s
            for path in sorted(lists.glob("*_Packages"))
            for s in parse_stanzas(path.read_text())
        }
        release = next(iter(sorted(lists.glob("*_Release"))), None)
        epoch = _release_epoch(release) if release else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    missing = [n for n in names if n not in index]
    if missing:
        msg = f"debootstrap chose {missing[0]} but the Packages index lacks it; retry later"
        raise ResolutionError(msg)
    packages = [
        {"name": n, "version": index[n]["Version"], "sha256": index[n]["SHA256"]} for n in names
    ]
    return {
        "bootstrap": {"suite": boot.suite, "mirror": boot.mirror, "variant": boot.variant},
        "epoch": epoch,
        "packages": packages,
    }


def _release_epoch(release: Path) -> int:
    for line in release.read_text(errors="replace").splitlines():
        if line.startswith("Date:"):
            return int(parsedate_to_datetime(line.split(":", 1)[1].strip()).timestamp())
    return 0


def has_registry(ref: str) -> bool:
    first, sep, _ = ref.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")


def resolve_image(ref: str, *, platform: str, engine: Engine) -> dict[str, Any]:
    if "@sha256:" in ref:
        repo, _, digest = ref.partition("@")
        return {"image": ref, "pinned": f"{repo}@{digest}", "epoch": 0}
    if has_registry(ref):
        digest = engine.registry_digest(ref, platform)
        repo = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
        return {"image": ref, "pinned": f"{repo}@{digest}", "epoch": 0}
    image_id = engine.image_id(ref)
    if image_id is None:
        msg = (
            f"base image {ref!r} is not present locally and has no registry host to pin it "
            f"from. Load it (`docker load`), or name it with its registry (e.g. "
            f"127.0.0.1:5000/{ref}), or use `bootstrap` instead"
        )
        raise ResolutionError(msg)
    return {"image": ref, "pinned": image_id, "epoch": 0}


# What a registry may answer for a reference: an index of platforms, or one image.
INDEXES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFESTS = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)


def split_ref(ref: str) -> tuple[str, str, str]:
    """`host/repo:tag` or `host/repo@sha256:...` as (registry host, repo, tag or digest)."""
    host, _, rest = ref.partition("/")
    repo, at, digest = rest.partition("@")
    if at:
        reference = digest
    else:
        last = repo.rsplit("/", 1)[-1]
        reference = last.rsplit(":", 1)[1] if ":" in last else "latest"
        repo = repo[: len(repo) - len(reference) - 1] if ":" in last else repo
    if host in ("docker.io", "index.docker.io"):  # Docker Hub's API host and official images
        host = "registry-1.docker.io"
        repo = repo if "/" in repo else f"library/{repo}"
    return host, repo, reference


def resolve_foreign_image(ref: str, *, platform: str) -> dict[str, Any]:
    """Another platform's base: its own manifest in the index `ref` names, from the registry."""
    if not has_registry(ref):
        msg = (
            f"[base] image = {ref!r} is a local image, which has this machine's platform only, "
            f"so it cannot be the base of {platform}. Name an image index that has "
            f"{platform} in a registry (e.g. 127.0.0.1:5000/{ref}, pushed with `sandbox "
            "publish` or `docker buildx build --platform ... --push`), or use `bootstrap`"
        )
        raise ResolutionError(msg)
    host, repo, reference = split_ref(ref)
    registry = Registry(host)
    found = registry.get_manifest(repo, reference, [*INDEXES, *MANIFESTS])
    if found is None:
        msg = f"base image {ref}: its registry {host} has no such manifest. Check the name and tag"
        raise ResolutionError(msg)
    body, media_type, digest = found
    document = json.loads(body)
    os_name, arch = platform.split("/")
    if media_type in INDEXES or "manifests" in document:
        offered = []
        for entry in document.get("manifests") or []:
            entry_platform = entry.get("platform") or {}
            offered.append(f"{entry_platform.get('os')}/{entry_platform.get('architecture')}")
            if (entry_platform.get("os"), entry_platform.get("architecture")) == (os_name, arch):
                return {"image": ref, "pinned": f"{host_repo(ref)}@{entry['digest']}", "epoch": 0}
        msg = (
            f"base image {ref}: its index has no {platform} image (it has "
            f"{', '.join(offered) or 'none'}). Use an image published for {platform}, or "
            "drop that platform from [image].platforms"
        )
        raise ResolutionError(msg)
    config = _config_of(registry, repo, document, where=ref)
    if (config.get("os"), config.get("architecture")) != (os_name, arch):
        msg = (
            f"base image {ref} is one image, for {config.get('os')}/"
            f"{config.get('architecture')}, not for {platform}. Name an image index that has "
            f"{platform}, or drop that platform from [image].platforms"
        )
        raise ResolutionError(msg)
    return {"image": ref, "pinned": f"{host_repo(ref)}@{digest}", "epoch": 0}


def host_repo(ref: str) -> str:
    """`ref` without its tag or digest: what a pin puts `@sha256:...` after."""
    name = ref.partition("@")[0]
    return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name


def _config_of(
    registry: Registry, repo: str, manifest: dict[str, Any], *, where: str
) -> dict[str, Any]:
    """A manifest's image config (its os and architecture), read from the registry."""
    digest = str((manifest.get("config") or {}).get("digest") or "")
    work = Path(tempfile.mkdtemp(prefix="sandbox-config-"))
    try:
        registry.pull_blob(repo, digest, work / "config.json")
        config: dict[str, Any] = json.loads((work / "config.json").read_text())
    except ValueError:
        msg = f"base image {where}: its config {digest} is not JSON. Check the image"
        raise ResolutionError(msg) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return config
