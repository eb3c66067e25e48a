"""Pinning the base node: a bootstrap package list, or an image reference's digest.

- `bootstrap`: debootstrap itself resolves the package set (`--print-debs`); each package's
  version and sha256 come from the same signed Packages index debootstrap read, and the
  suite's Release date becomes the lock's source_date_epoch.
- `image`: a reference with a registry host is pinned to its manifest digest; any other
  reference to the image ID of the local image (DESIGN.md §7: never a moving tag).
"""

from __future__ import annotations

import shutil
import tempfile
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from builder import limits, proc
from builder.engine import Engine
from builder.errors import ResolutionError
from builder.resolve.debian import parse_stanzas
from builder.spec import BaseSpec, Bootstrap


def resolve_base(base: BaseSpec, *, platform: str, engine: Engine | None) -> dict[str, Any]:
    """The locked inputs of the base node."""
    if base.bootstrap is not None:
        return resolve_bootstrap(base.bootstrap, platform=platform)
    assert base.image is not None
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
