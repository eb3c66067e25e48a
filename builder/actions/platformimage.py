"""One platform's image from the nodes built for it: its config, layers and tags, and the SBOM
its config labels.

`sandbox build` makes it from the nodes it just built; publishing a lock of several platforms
(`index.py`) makes each other platform's from the cache's entries, and `sandbox verify` makes
it again to compare. The config is a function of the lock, the entries and the profile layer
(image/profile.py) alone, so the image ID is known before an engine is asked anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from builder.core.atomic import write_atomic
from builder.core.keys import content_digest, sha256_of
from builder.core.layout import SBOM_FILE
from builder.core.platforms import host_platform
from builder.image import assemble
from builder.image.annotations import config_labels
from builder.image.loading import IMAGE_LABEL
from builder.image.profile import HISTORY, profile_layer
from builder.kinds import KINDS
from builder.kinds.order import image_layers
from builder.model import inherit
from builder.model.lockfile import Lock, NodeLock
from builder.model.spec import Spec
from builder.store.cache import Cache, Layer, NodeEntry

LABEL_PREFIX = "dev.sandbox-builder"


def sbom_name(platform: str) -> str:
    """The host's SBOM is SBOM_FILE; another platform's names its arch (sbom.arm64.spdx.json)."""
    if platform == host_platform():
        return SBOM_FILE
    return SBOM_FILE.replace(".", f".{platform.split('/')[1]}.", 1)


@dataclass(frozen=True, kw_only=True)
class PlatformImage:
    """One platform's image: its config (hence its ID), its layers (the nodes', then the
    profile layer, image/profile.py) and its local tags."""

    platform: str
    config: assemble.ImageConfig
    layers: list[Layer]
    tags: list[str]
    nodes: Mapping[str, NodeLock]


def platform_image(
    *, spec: Spec, lock: Lock, platform: str, entries: list[NodeEntry], cache: Cache
) -> PlatformImage:
    """The image of `platform` stacking the built `entries` (the lock's nodes, in build order)."""
    nodes = lock.nodes(platform)
    env = assemble.compose_env(entries[0].env, [e.env for e in entries[1:]])
    env.update(KINDS.env(nodes))  # pinned agent CLIs do not update themselves
    env.update(spec.image.env)
    # The SBOM comes from the lock alone, so its digest can label the image it describes.
    sbom_digest = write_sbom(lock, image=spec.image.name, platform=platform, cache=cache)
    lock_digest = sha256_of({name: node.key for name, node in sorted(nodes.items())})
    base_inputs = KINDS.base(nodes)
    labels = {
        **config_labels(
            title=spec.image.name,
            lock_digest=lock_digest,
            epoch=lock.source_date_epoch,
            base=base_inputs,
        ),
        IMAGE_LABEL: lock_digest,
        **{f"{LABEL_PREFIX}.node.{e.name}": e.key for e in entries},
        f"{LABEL_PREFIX}.sbom": sbom_digest,
    }
    # Env above in build order; layers in the order a bump re-registers least (kinds/order.py)
    layers = image_layers(
        nodes,
        {e.name: e.layers for e in entries},
        needs_stage=lambda node: KINDS.of(node.name).needs_stage(node),
        entries=cache.layer_entries([la for e in entries for la in e.layers]),
    )
    # On top: login shells' view of this Env (image/profile.py), a function of every node.
    layers.append((HISTORY, profile_layer(env, epoch=lock.source_date_epoch, cache=cache)))
    base = inherit.recorded_config(base_inputs)
    system = KINDS.system(nodes)
    config = assemble.image_config(
        layers=layers,
        env=env,
        platform=platform,
        epoch=lock.source_date_epoch,
        user=inherit.effective_user(system, base),
        workdir=inherit.effective_workdir(system, base),
        labels=labels,
        base=base,
    )
    short = config.image_id.removeprefix("sha256:")[:12]
    latest = "latest" if platform == host_platform() else f"latest-{platform.split('/')[1]}"
    return PlatformImage(
        platform=platform,
        config=config,
        layers=[layer for _, layer in layers],
        tags=[f"{spec.image.name}:{short}", f"{spec.image.name}:{latest}"],
        nodes=nodes,
    )


def write_sbom(lock: Lock, *, image: str, platform: str, cache: Cache) -> str:
    """Write the SPDX SBOM of the build to cache/sbom.spdx.json; its `sha256:` digest.

    The document is a function of the lock's nodes, its epoch, the image name, the platform
    and the code of builder/sbom/, so a stamp of those beside it (with the file's digest)
    lets a build whose SBOM did not change, a no-op for one, skip making it again.
    """
    path = cache.root / sbom_name(platform)
    stamp_path = path.with_name(f"{path.name}.stamp")
    made_of = sha256_of(
        {
            "nodes": {name: node.key for name, node in sorted(lock.nodes(platform).items())},
            "epoch": lock.source_date_epoch,
            "image": image,
            "platform": platform,
            "code": _sbom_code(),
        }
    )
    try:
        stamp = json.loads(stamp_path.read_text())
        digest = content_digest(path.read_bytes())
        if stamp == {"made_of": made_of, "digest": digest}:
            return digest
    except (OSError, ValueError):
        pass  # no stamp or no file yet: make it
    from builder import sbom

    data = sbom.render(sbom.spdx_document(lock, image=image, platform=platform))
    digest = sbom.digest_of(data)
    sbom.write_sbom(data, path)
    write_atomic(stamp_path, json.dumps({"made_of": made_of, "digest": digest}).encode())
    return digest


def _sbom_code() -> str:
    """A digest of the modules that write the SBOM: changing them invalidates every stamp."""
    files = sorted((Path(__file__).parent.parent / "sbom").glob("*.py"))
    return sha256_of({f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files})
