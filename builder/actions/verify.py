"""`sandbox verify [REF]`: rebuild the lock's image from nothing and compare it with REF.

Trusting a pushed image means trusting whoever pushed it, unless anybody can rebuild it: as
Nix's `--check` and Chainguard's rebuilds of apko images do, verify builds every node again
in an empty cache dir and an empty user-wide store (temporary folders), with no team cache,
so nothing of ours comes from a registry or another build. Downloads (debs, archives,
wheels) still come from the user's download cache: they are third-party files checked
against the lock's hashes, not build results. The rebuilt image is not loaded or tagged:
the engine's images stay as they were.

REF is a registry reference (`host/name:tag` or `host/name@sha256:...`, read with the
registry client) or an image the engine holds (read through `docker save`); by default,
what the last build's overlay pins. The two agree when their config digests (image IDs)
do. Otherwise the result names the first layer, bottom up, whose diff ID differs, the node
that built it in the rebuild, and each file that differs in it; when every layer agrees,
the config keys that differ.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from builder.actions.platformimage import platform_image
from builder.core.errors import OverlayError
from builder.core.platforms import host_platform
from builder.core.progress import Progress
from builder.engine.interface import Engine
from builder.model.lockfile import Lock
from builder.model.spec import Spec
from builder.realize.execute import Executor, NodeOutcome
from builder.realize.plan import make_plan
from builder.store.cache import Cache
from builder.store.contents import FileDifference, differences, listing

EXTRA = "(a layer the lock does not have)"


class ImageSource(Protocol):
    """An image to compare with: its config and, on demand, its layers (bottom first)."""

    @property
    def ref(self) -> str: ...
    @property
    def config(self) -> bytes: ...
    @property
    def image_id(self) -> str: ...
    @property
    def diff_ids(self) -> list[str]: ...
    def layer(self, index: int, dest: Path) -> Path: ...


@dataclass(frozen=True, kw_only=True)
class LayerDifference:
    """The first layer, bottom up, where the rebuild and REF differ."""

    node: str  # the rebuild's node holding that layer, or EXTRA
    index: int
    ours: str | None  # diff IDs; None: that image has no layer there
    theirs: str | None
    files: list[FileDifference]

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "index": self.index,
            "ours": self.ours,
            "theirs": self.theirs,
            "files": [f.to_json() for f in self.files],
        }


@dataclass(frozen=True, kw_only=True)
class VerifyResult:
    ref: str
    expected: str  # the rebuilt image's ID
    found: str  # REF's
    nodes: list[NodeOutcome]
    layer: LayerDifference | None = None
    config_keys: list[str] = field(default_factory=list)  # when only the config differs

    @property
    def same(self) -> bool:
        return self.expected == self.found

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "same": self.same,
            "rebuilt": self.expected,
            "found": self.found,
            "nodes": [
                {
                    "name": n.name,
                    "key": n.key,
                    "status": n.status,
                    "layer": n.entry.layers[-1].diff_id if n.entry.layers else None,
                }
                for n in self.nodes
            ],
            "difference": self.layer.to_json() if self.layer else None,
            "config_keys": self.config_keys,
        }

    def text(self) -> str:
        if self.same:
            return f"verified: {self.ref} is the lock's image {self.expected}"
        lines = [f"{self.ref} is {self.found}; the lock rebuilds {self.expected}"]
        if self.layer is not None:
            lines.append(
                f"first differing layer: #{self.layer.index} of {self.layer.node} "
                f"(rebuilt {self.layer.ours or 'none'}, checked {self.layer.theirs or 'none'})"
            )
            lines += [f"  {f.text()}" for f in self.layer.files]
            if not self.layer.files:
                lines.append("  no file differs: only tar metadata does (mtimes, order)")
        elif self.config_keys:
            lines.append(
                f"every layer agrees; the image config differs in: {', '.join(self.config_keys)}"
            )
        return "\n".join(lines)


def default_ref(overlay: Path) -> str:
    """What the last build's overlay pins: the pushed image, or the local image's ID."""
    try:
        document = json.loads(overlay.read_text())
        return str(document["codex"]["sandbox"]["image"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = (
            f"{overlay}: no image pinned there to verify ({exc.__class__.__name__}). Name one "
            "(`sandbox verify 127.0.0.1:5000/acme/sandbox@sha256:...`) or run `sandbox build`"
        )
        raise OverlayError(msg) from exc


def verify_image(
    *,
    spec: Spec,
    lock: Lock,
    ref: str,
    engine: Callable[[], Engine],
    progress: Progress,
    jobs: int,
) -> VerifyResult:
    """Rebuild the lock's image (this machine's platform) from nothing; compare with `ref`."""
    platform = host_platform()
    with tempfile.TemporaryDirectory(prefix="sandbox-verify-") as folder:
        work = Path(folder)
        # REF first: a wrong name fails before the rebuild, not after it.
        source = _open(ref, engine=engine, platform=platform, work=work)
        cache = Cache(work / "cache", store=work / "store")
        cache.ensure()
        nodes = lock.nodes(platform)
        executor = Executor(
            nodes=nodes,
            cache=cache,
            engine=engine,
            platform=platform,
            epoch=lock.source_date_epoch,
            progress=progress,
            project_dir=spec.project_dir,
            remote=None,  # nothing of ours from the team cache
        )
        outcomes = executor.run(make_plan(nodes, cache.entry), jobs=jobs)
        entries = [o.entry for o in outcomes]
        image = platform_image(
            spec=spec, lock=lock, platform=platform, entries=entries, cache=cache
        )
        result = VerifyResult(
            ref=ref, expected=image.config.image_id, found=source.image_id, nodes=outcomes
        )
        if result.same:
            return result
        ours = [(o.name, layer.diff_id) for o in outcomes for layer in o.entry.layers]
        layer = _first_difference(ours, source, cache=cache, work=work)
        if layer is not None:
            return VerifyResult(
                ref=ref, expected=result.expected, found=result.found, nodes=outcomes, layer=layer
            )
        keys = _config_keys(json.loads(image.config.data), json.loads(source.config))
        return VerifyResult(
            ref=ref, expected=result.expected, found=result.found, nodes=outcomes, config_keys=keys
        )


def _open(ref: str, *, engine: Callable[[], Engine], platform: str, work: Path) -> ImageSource:
    from builder.resolve.base import has_registry

    if has_registry(ref):
        from builder.publish.remote import open_remote

        return open_remote(ref, platform=platform, work=work)
    from builder.image.saved import save_image

    return save_image(engine(), ref, work=work)


def _first_difference(
    ours: list[tuple[str, str]], source: ImageSource, *, cache: Cache, work: Path
) -> LayerDifference | None:
    theirs = source.diff_ids
    for index in range(max(len(ours), len(theirs))):
        node, mine = ours[index] if index < len(ours) else (EXTRA, None)
        other = theirs[index] if index < len(theirs) else None
        if mine == other:
            continue
        rebuilt = listing(cache.layer_path(mine)) if mine else {}
        checked = listing(source.layer(index, work / "checked-layer")) if other else {}
        files = differences(rebuilt, checked)
        return LayerDifference(node=node, index=index, ours=mine, theirs=other, files=files)
    return None


def _config_keys(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """The keys (`config.Env`, `created` ...) whose values differ between two image configs."""
    keys = []
    for key in sorted(ours.keys() | theirs.keys()):
        mine, other = ours.get(key), theirs.get(key)
        if isinstance(mine, dict) and isinstance(other, dict) and key == "config":
            keys += [f"config.{k}" for k in _config_keys(mine, other)]
        elif mine != other:
            keys.append(key)
    return keys
