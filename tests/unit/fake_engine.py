"""One recording fake of `engine.interface.Engine` for the unit tests (pip-tools' FakeRepository).

Every method of the interface is here, so a test passes a `FakeEngine` where the code wants an
`Engine` (mypy checks it), and every call is appended to `calls` as one short line
(`run IMAGE network=True`, `load sandbox-stage:…`, `rm c1`) for the test to compare.

Containers are not run: `run` hands a `Run` (what was asked, and the container's log and
upper dir) to `step`, the test's stand-in for the script, which may write the log and files
into `run.upper` (the container's diff, read back through `DiffFolders.upper_dir`, which the
fake offers as a local overlay2 engine does) and returns the exit code.
`shell_step` runs the script on this machine with /bin/sh instead, for resolvers whose
scripts only need a few faked programs on PATH. Images are what `load`, `pull` and `tag`
gave the engine: `find_image` and `image_id` answer from them; `stacks` are the layer
stacks (diff IDs) of the images a test says the engine holds, by label.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import subprocess
import tarfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.core.errors import EngineRefusedError
from builder.engine.interface import Confinement, ImageInfo, Mount, RunResult


@dataclass(frozen=True, kw_only=True)
class Run:
    """One `Engine.run` call: what it was asked, and where its container's output goes."""

    container: str
    image: str
    script: str
    log: Path
    env: Mapping[str, str]
    mounts: list[Mount]
    network: bool
    upper: Path  # the container's changes, as overlay2 keeps them


def no_op_step(run: Run) -> int:
    """A script that prints nothing, changes nothing and succeeds."""
    return 0


def shell_step(bin_dir: Path, rewrite: Callable[[str], str] = str) -> Callable[[Run], int]:
    """A step running the script here with /bin/sh, `bin_dir` first on PATH (fake apt-get,
    say), its output in the log; `rewrite` adjusts the script first (container paths)."""

    def step(run: Run) -> int:
        with run.log.open("w") as out:
            done = subprocess.run(
                ["/bin/sh", "-c", rewrite(run.script)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**run.env, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
                check=False,
            )
        return done.returncode

    return step


@dataclass
class FakeEngine:
    """The Engine interface over in-memory images; containers are `step` calls (see above).

    `root` holds the containers' upper dirs; `present` answers `image_id` for refs a test
    says the engine has (pulled or loaded ones are added); `config` is what `inspect` gives;
    `listed` and `held` are the images and containers listed by label (what gc sees);
    `in_use` are images a running container holds (removing one is the engine's 409).
    """

    root: Path
    step: Callable[[Run], int] = no_op_step
    present: set[str] = field(default_factory=set)
    config: dict[str, Any] = field(default_factory=dict)
    listed: dict[str, list[ImageInfo]] = field(default_factory=dict)  # label -> images
    held: dict[str, list[str]] = field(default_factory=dict)  # label -> containers
    stacks: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)  # label -> diff IDs
    calls: list[str] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)  # repo:tag -> image ID
    loaded: list[list[str]] = field(default_factory=list)  # the layer.tar names of each load
    in_use: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def _record(self, call: str) -> None:
        with self._lock:
            self.calls.append(call)

    # -- images ----------------------------------------------------------------------------

    def ping(self) -> str:
        self._record("ping")
        return "fake 1.0"

    def image_id(self, ref: str) -> str | None:
        found = self.tags.get(ref) or (ref if ref in self.present else None)
        self._record(f"image_id {ref}")
        return found

    def find_image(
        self, config_digest: str, *, tag: str, diff_ids: list[str], labels: Mapping[str, str]
    ) -> str | None:
        return self.tags.get(tag)

    def image_env(self, ref: str) -> list[str]:
        return list(self.config.get("Env", []))

    def registry_digest(self, ref: str, platform: str) -> str:
        self._record(f"registry_digest {ref} {platform}")
        return "sha256:" + "0" * 64

    def pull(self, ref: str, platform: str) -> str:
        self._record(f"pull {ref}")
        self.present.add(ref)
        return ref

    def save(self, ref: str, dest: Path) -> None:
        msg = "FakeEngine keeps no image contents to save; give the step an upper dir instead"
        raise NotImplementedError(msg)

    def load(self, archive: Iterable[bytes]) -> None:
        """Take a `docker load` archive: its tags now name its image (`loaded_id`)."""
        with tarfile.open(fileobj=io.BytesIO(b"".join(archive))) as tar:
            member = tar.extractfile("manifest.json")
            assert member is not None
            [manifest] = json.loads(member.read())
            names = sorted(n for n in tar.getnames() if n.endswith("layer.tar"))
        with self._lock:
            self.loaded.append(names)
        self._record(f"load {' '.join(manifest['RepoTags'])} ({len(names)} layers)")
        self.check_load(names)
        config = "sha256:" + manifest["Config"].removeprefix("blobs/sha256/").split(".")[0]
        with self._lock:
            for tag in manifest["RepoTags"]:
                self.tags[tag] = self.loaded_id(config)

    def check_load(self, layers: list[str]) -> None:
        """Raise as `docker load` would refuse an archive of `layers` (here: never)."""

    def loaded_id(self, config_digest: str) -> str:
        """The engine's ID of a loaded image: its config digest, as on overlay2."""
        return config_digest

    def tag(self, image: str, repository: str, tag: str) -> None:
        with self._lock:
            self.tags[f"{repository}:{tag}"] = image

    def layer_stacks(
        self, label: str, known: Mapping[str, tuple[str, ...]]
    ) -> dict[str, tuple[str, ...]]:
        """`stacks[label]` by made-up image IDs; those not in `known` are inspected."""
        found = {stack_id(stack): stack for stack in self.stacks.get(label, [])}
        for image in found:
            if image not in known:
                self._record(f"inspect {image}")
        return found

    def inspect(self, ref: str) -> dict[str, Any]:
        self._record(f"inspect {ref}")
        return {"Config": dict(self.config)}

    def images(self, label: str) -> list[ImageInfo]:
        return list(self.listed.get(label, []))

    def remove_image(self, image: str) -> None:
        self._record(f"rmi {image}")
        if image in self.in_use:
            msg = f"fake refused removing image {image} (HTTP 409): image is being used"
            raise EngineRefusedError(msg, status=409)

    # -- containers ------------------------------------------------------------------------

    def run(
        self,
        *,
        image: str,
        script: str,
        log: Path,
        env: Mapping[str, str],
        mounts: list[Mount],
        network: bool,
    ) -> RunResult:
        container = f"c{next(self._ids)}"
        upper = self.root / "containers" / container
        upper.mkdir(parents=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch()
        run = Run(
            container=container,
            image=image,
            script=script,
            log=log,
            env=dict(env),
            mounts=list(mounts),
            network=network,
            upper=upper,
        )
        with self._lock:
            self.runs.append(run)
        self._record(f"run {image} network={network}")
        return RunResult(container=container, exit_code=self.step(run))

    def commit(self, container: str) -> str:
        self._record(f"commit {container}")
        return f"sha256:committed-{container}"

    def changes(self, container: str) -> list[str]:
        """Every path in the container's upper dir, named as `docker diff` names them."""
        upper = self.root / "containers" / container
        return sorted("/" + str(p.relative_to(upper)) for p in upper.rglob("*"))

    def upper_dir(self, container: str) -> Path | None:
        """`DiffFolders`: the folder the step wrote the container's changes into."""
        return self.root / "containers" / container

    def runtimes(self) -> list[str]:
        return ["runc"]

    def run_confined(
        self, *, image: str, command: Sequence[str], confinement: Confinement, timeout: float
    ) -> tuple[int, str]:
        self._record(f"run_confined {image} user={confinement.user}")
        return 0, ""

    def remove_container(self, container: str) -> None:
        self._record(f"rm {container}")

    def containers(self, label: str) -> list[str]:
        return list(self.held.get(label, []))


def stack_id(stack: tuple[str, ...]) -> str:
    """The made-up image ID of an image whose layers are `stack`."""
    return "sha256:" + hashlib.sha256(" ".join(stack).encode()).hexdigest()
