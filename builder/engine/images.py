"""The engine's images: find, inspect, tag, pull, save, load, list and remove them.

Images are named by their config digest; `Images` turns that name into the engine's where
the containerd image store names them otherwise (`find_image` learns it).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from builder.core import space
from builder.core.errors import (
    BuildError,
    EngineRefusedError,
    EngineUnavailableError,
    RegistryError,
    ResolutionError,
)
from builder.engine import dockersock
from builder.engine.connection import START_HINT, Connection, short
from builder.engine.interface import ImageInfo

# what a `docker load` over the local socket may wait for one answer (registering a GB of
# layers takes seconds here; a stuck daemon must not hang the build without end)
LOAD_TIMEOUT = 900.0


class Images(Connection):
    """The image operations of `Engine` on a Docker daemon."""

    def image_id(self, ref: str) -> str | None:
        found = self._image_json(self._ids.get(ref, ref))
        return None if found is None else str(found["Id"])

    def _image_json(self, ref: str) -> dict[str, Any] | None:
        if self._socket is not None:
            status, body = self._request("GET", f"/images/{quote(ref, safe='')}/json")
            if status in (400, 404):
                return None
            if status == 200:
                found: dict[str, Any] = json.loads(body)
                return found
        with self._asking(f"inspecting image {ref}"):
            try:
                info: dict[str, Any] = self._client.api.inspect_image(ref)
            except self._errors.ImageNotFound:
                return None
            except self._errors.APIError as exc:
                if exc.status_code in (400, 404):
                    return None
                raise
        return info

    def find_image(
        self, config_digest: str, *, tag: str, diff_ids: list[str], labels: Mapping[str, str]
    ) -> str | None:
        """The engine's ID of the image whose config has digest `config_digest`, or None.

        Docker's classic store knows an image by that digest. The containerd store cannot be
        asked by config: there the image tagged `tag` is it when its layers and labels are
        the config's (our labels name the lock and every node key); its ID is remembered.
        """
        found = self.image_id(config_digest)
        if found is not None:
            return found
        info = self._image_json(tag)
        if info is None:
            return None
        layers = list((info.get("RootFS") or {}).get("Layers") or [])
        theirs = (info.get("Config") or {}).get("Labels") or {}
        if layers != diff_ids or any(theirs.get(k) != v for k, v in labels.items()):
            return None
        self._ids[config_digest] = str(info["Id"])
        return self._ids[config_digest]

    def tag(self, image: str, repository: str, tag: str) -> None:
        image = self._ids.get(image, image)
        if self._socket is not None:
            query = urlencode({"repo": repository, "tag": tag, "force": "1"})
            status, _ = self._request("POST", f"/images/{quote(image, safe='')}/tag?{query}")
            if status in (200, 201):
                return
        with self._asking(f"tagging {image} as {repository}:{tag}"):
            self._client.api.tag(image, repository, tag=tag, force=True)

    def image_env(self, ref: str) -> list[str]:
        with self._asking(f"inspecting image {ref}"):
            config = self._client.api.inspect_image(self._ids.get(ref, ref)).get("Config") or {}
        return list(config.get("Env") or [])

    def registry_digest(self, ref: str, platform: str) -> str:
        client = self._client  # connects first, so the SDK's error classes are known
        try:
            data = client.images.get_registry_data(ref)
        except self._errors.DockerException as exc:
            msg = f"cannot read {ref} from its registry ({short(exc)}). Check the name and tag"
            raise ResolutionError(msg) from None
        return str(data.id)

    def pull(self, ref: str, platform: str) -> str:
        repo, _, digest = ref.partition("@")
        api = self._client.api
        try:
            api.pull(repo, tag=digest or None, platform=platform)
        except self._errors.DockerException as exc:
            msg = f"cannot pull {ref} ({short(exc)}). Is the registry up? Re-lock if it moved"
            raise RegistryError(msg) from None
        found = self.image_id(ref)
        if found is None:
            msg = f"pulled {ref} but the engine does not list it"
            raise RegistryError(msg)
        return found

    def save(self, ref: str, dest: Path) -> None:
        with self._asking(f"saving image {ref} (docker save)"), dest.open("wb") as out:
            for chunk in self._client.api.get_image(self._ids.get(ref, ref)):
                out.write(chunk)

    def load(self, archive: Iterable[bytes]) -> None:
        """`docker load` the archive streamed in `archive`; the engine's refusal is a
        BuildError saying why."""
        if self._socket is not None:  # no SDK to import (0.15 s of a 0.9 s rebuild)
            for said in self._load_over_socket(archive):
                self._refused_load(said)
            return
        with self._asking("loading an image (docker load)"):
            for message in self._client.api.load_image(archive):
                if isinstance(message, dict) and message.get("error"):
                    self._refused_load(str(message["error"]))

    def _load_over_socket(self, archive: Iterable[bytes]) -> list[str]:
        """The errors a `docker load` over the local socket reported (none: loaded)."""
        assert self._socket is not None
        try:
            status, body = dockersock.stream(
                self._socket, "/images/load?quiet=1", archive, timeout=LOAD_TIMEOUT
            )
        except OSError as exc:
            msg = (
                f"Docker Engine stopped answering while loading an image ({self._socket}: "
                f"{short(exc)}). {START_HINT}"
            )
            raise EngineUnavailableError(msg) from None
        said = []
        for line in body.decode(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict) and (message.get("error") or status >= 400):
                    said.append(str(message.get("error") or message.get("message") or line))
        if (status >= 400 and not said) or status == 0:
            said.append(f"HTTP {status}: {body[:200].decode(errors='replace')}")
        return said

    def _refused_load(self, said: str) -> None:
        if space.says_full(said):
            what = "loading an image (docker load)"
            raise space.engine_full(what=what, storage=self.storage(), said=said)
        msg = f"{self.describe()} refused to load the image: {said}"
        raise EngineRefusedError(msg)

    def layer_stacks(
        self, label: str, known: Mapping[str, tuple[str, ...]]
    ) -> dict[str, tuple[str, ...]]:
        """Image ID -> the diff IDs, bottom first, of every image carrying `label`. An image
        ID names its layers for good, so the stacks in `known` are not asked for again (one
        inspect per image: ~0.5 s for the 140 images a machine running the tests holds)."""
        stacks = {}
        for image_id in self._image_ids(label):
            if image_id in known:
                stacks[image_id] = known[image_id]
                continue
            found = self._image_json(image_id)
            if found is not None:  # gone meanwhile: not one of them
                stacks[image_id] = tuple(str(la) for la in found["RootFS"]["Layers"])
        return stacks

    def _image_ids(self, label: str) -> list[str]:
        if self._socket is not None:
            query = urlencode({"filters": json.dumps({"label": [label]})})
            status, body = self._request("GET", f"/images/json?{query}")
            if status == 200:
                return [str(image["Id"]) for image in json.loads(body)]
        with self._asking(f"listing the images labelled {label}"):
            return [str(i["Id"]) for i in self._client.api.images(filters={"label": label})]

    def inspect(self, ref: str) -> dict[str, Any]:
        """`docker image inspect` of `ref`; a missing image is a BuildError saying so."""
        with self._asking(f"inspecting image {ref}"):
            try:
                found: dict[str, Any] = self._client.api.inspect_image(self._ids.get(ref, ref))
            except self._errors.ImageNotFound:
                msg = f"no image {ref} in the engine. Check the name, or run `sandbox build`"
                raise BuildError(msg) from None
        return found

    def remove_image(self, image: str) -> None:
        api = self._client.api
        with self._asking(f"removing image {image}"), contextlib.suppress(self._errors.NotFound):
            api.remove_image(self._ids.get(image, image), force=True, noprune=False)

    def images(self, label: str) -> list[ImageInfo]:
        """Images carrying `label` (a key, or key=value)."""
        with self._asking(f"listing the images labelled {label}"):
            found = self._client.api.images(filters={"label": label})
        return [
            ImageInfo(id=i["Id"], tags=tuple(i.get("RepoTags") or ()), size=int(i.get("Size", 0)))
            for i in found
        ]
