"""An image as an engine holds it, read through `docker save`: its config and its layers.

`sandbox verify` checks a local image (the overlay of a build that was not pushed pins its
ID) the way it checks a pushed one. The saved archive's `manifest.json` names the config
and each layer's tar inside it, on the classic image store and on the containerd one alike;
the config's digest is the image ID whichever ID the engine shows.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from builder.core.errors import BuildError
from builder.core.keys import content_digest
from builder.engine.interface import Engine


@dataclass(frozen=True, kw_only=True)
class SavedImage:
    """An image saved from the engine to `archive`."""

    ref: str
    archive: Path
    config: bytes
    members: tuple[str, ...]  # the layer tars' names in `archive`, bottom first

    @property
    def image_id(self) -> str:
        return content_digest(self.config)

    @property
    def diff_ids(self) -> list[str]:
        return [str(d) for d in json.loads(self.config).get("rootfs", {}).get("diff_ids", [])]

    def layer(self, index: int, dest: Path) -> Path:
        """Layer `index` (bottom first), copied out of the archive to `dest`."""
        with tarfile.open(self.archive) as archive:
            source = archive.extractfile(self.members[index])
            if source is None:
                msg = f"the saved {self.ref} lacks its layer {self.members[index]}"
                raise BuildError(msg)
            with source, dest.open("wb") as out:
                shutil.copyfileobj(source, out)
        return dest


def save_image(engine: Engine, ref: str, *, work: Path) -> SavedImage:
    """`docker save` `ref` into `work` and read what it holds."""
    archive = work / "image.tar"
    engine.save(ref, archive)
    try:
        with tarfile.open(archive) as saved:
            manifest = json.loads(_read(saved, "manifest.json", ref))
            config = _read(saved, str(manifest[0]["Config"]), ref)
            members = tuple(str(name) for name in manifest[0]["Layers"])
    except (tarfile.TarError, KeyError, IndexError, ValueError) as exc:
        msg = f"the engine's `docker save` of {ref} cannot be read ({exc}); is it an image?"
        raise BuildError(msg) from exc
    return SavedImage(ref=ref, archive=archive, config=config, members=members)


def _read(archive: tarfile.TarFile, name: str, ref: str) -> bytes:
    member = archive.extractfile(name)
    if member is None:
        msg = f"the saved {ref} has no {name}"
        raise BuildError(msg)
    with member:
        return member.read()
