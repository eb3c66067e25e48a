"""Getting an image into the engine: only what it lacks, and tagged.

`sandbox build` knows an image's ID before asking the engine anything (the config comes
from the lock and the layers alone), so a present image costs one question. A missing one
is streamed to `docker load` with just the layers above the longest stack an image of ours
already holds (a stage or an earlier build), found through the labels below.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from builder.core.atomic import write_atomic
from builder.core.errors import BuildError
from builder.core.keys import canonical_bytes
from builder.core.layout import STACKS_FILE
from builder.engine.interface import Engine
from builder.image import assemble
from builder.store.cache import Cache, Layer

STAGE_REPO = "sandbox-stage"
STAGE_LABEL = "dev.sandbox-builder.stage"  # what `gc` finds build environments by
IMAGE_LABEL = "dev.sandbox-builder.lock"  # every image `sandbox build` makes carries it


@dataclass(frozen=True, kw_only=True)
class Loaded:
    """An image the engine now holds, and what getting it there cost: `build --json` reports
    it (`phases`), as registering layers is most of a build whose nodes are all cached."""

    engine_id: str  # the config digest; on the containerd image store the manifest digest
    layers: int = 0  # layer tars sent to the engine (each one it extracts and registers)
    bytes: int = 0  # their size
    seconds: float = 0.0  # asking, streaming, registering and tagging


def load_image(
    *,
    engine: Engine,
    cache: Cache,
    config: assemble.ImageConfig,
    layers: list[Layer],
    tags: list[str],
    held: Sequence[str] = (),
) -> Loaded:
    """Make sure the engine has the image of `config` with `tags`; load it when missing.
    Its `engine_id` is the engine's ID of it: the config digest, but on the containerd image
    store the manifest digest, which is what `docker run` accepts there.

    Only the layers above the longest stack the engine already holds (from an earlier stage
    or image, or one of the images `held` names: the pinned base image) are written into the
    archive; should the engine refuse that, the full archive is loaded instead.
    """
    started = time.monotonic()
    diff_ids = [layer.diff_id for layer in layers]
    sent: list[Layer] = []
    labels = json.loads(config.data)["config"].get("Labels") or {}

    def find() -> str | None:
        return engine.find_image(config.image_id, tag=tags[0], diff_ids=diff_ids, labels=labels)

    found = find()
    if found is None:
        present = _layers_present(engine, cache, diff_ids, held)
        try:
            _load(engine, cache, config, layers, tags, present=present)
        except BuildError:
            if not present:
                raise
            present = 0
            _load(engine, cache, config, layers, tags, present=0)
        sent = list({layer.diff_id: layer for layer in layers[present:]}.values())
        found = find()
        if found is None:
            msg = (
                f"the engine loaded {tags[0]} but lists no image of config {config.image_id} "
                "under that tag; `sandbox doctor` checks the engine"
            )
            raise BuildError(msg)
    for tag in tags:
        repo, _, name = tag.rpartition(":")
        engine.tag(found, repo, name)
    return Loaded(
        engine_id=found,
        layers=len(sent),
        bytes=sum(layer.size for layer in sent),
        seconds=round(time.monotonic() - started, 2),
    )


def _layers_present(
    engine: Engine, cache: Cache, diff_ids: list[str], held: Sequence[str] = ()
) -> int:
    """How many bottom layers of `diff_ids` an image this tool made, or an image of `held`,
    already has, in order.

    The layer stacks of the engine's images are remembered in cache/stacks.json (image ID
    -> diff IDs, which never change), so only images new since the last load are inspected.
    """
    memo = cache.root / STACKS_FILE
    try:
        known = {k: tuple(v) for k, v in json.loads(memo.read_bytes()).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        known = {}  # none yet, or unreadable: ask the engine about every image
    stacks: dict[str, tuple[str, ...]] = {}
    for label in (STAGE_LABEL, IMAGE_LABEL):
        stacks.update(engine.layer_stacks(label, known))
    if stacks != known:
        write_atomic(memo, canonical_bytes(stacks))
    stacks.update(_stacks_of(engine, held))
    best = 0
    for theirs_all in stacks.values():
        same = 0
        for mine, theirs in zip(diff_ids, theirs_all, strict=False):
            if mine != theirs:
                break
            same += 1
        best = max(best, same)
    return best


def _stacks_of(engine: Engine, refs: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The layers of each image of `refs` the engine has (one it lacks is left out)."""
    stacks = {}
    for ref in refs:
        try:
            found = engine.inspect(ref)
        except BuildError:
            continue  # gone: its layers are sent
        layers = (found.get("RootFS") or {}).get("Layers") or []
        stacks[ref] = tuple(str(layer) for layer in layers)
    return stacks


def _load(
    engine: Engine,
    cache: Cache,
    config: assemble.ImageConfig,
    layers: list[Layer],
    tags: list[str],
    *,
    present: int,
) -> None:
    engine.load(
        assemble.archive_chunks(
            config=config, layers=layers, cache=cache, tags=tags, present=present
        )
    )
