"""`bench/run.py --out DIR [--repeat N]`: `sandbox build` against its peers, in one run.

The contenders: ours (`sandbox build`), the classic builder (`DOCKER_BUILDKIT=0 docker build`
of bench/dockerfile.py's Dockerfile) and BuildKit as an expert writes for it
(`DOCKER_BUILDKIT=1 /usr/bin/docker build`, docker.io 20.10's BuildKit, of bench/buildkit.py's
multi-stage Dockerfile with cache and secret mounts), side by side on the host's daemon; and
`buildx`: the same Dockerfile with `COPY --link` into the final stage, built by `docker
buildx build` (sid's docker-buildx 0.29 as a plugin of the host's CLI) on Debian sid's Docker
28.5 in a container (tests/integration/engines.py), the current frontend built into its
BuildKit (no `# syntax=`: Docker Hub is unreachable). buildx runs every scenario but
teammate; `--no-buildx` leaves it out.

The workload (SPEC): system packages, node 22 from PyPI, python from apt, npm tools
(@openai/codex, typescript) and pip tools (ruff, mypy), and a pnpm project in `install` mode.
Three variants are locked once, untimed: v0; v1 = one npm tool's version changed; v2 = v1 with
node's major changed; each gets its Dockerfiles generated from its sandbox.lock (what `sandbox
lock` builds to resolve comes from the user-wide store). Set-up then builds v0 and v2 once
with ours, BuildKit and buildx (untimed), so that each side's download caches hold what the
scenarios fetch. Per repeat the contenders take turns (who goes first rotates
every repeat) through the scenarios:

- cold: our cache dir and user-wide store of nodes emptied and our images removed (and any
  other image holding one of our layers above the base); the
  Dockerfiles' images removed and BuildKit's build cache pruned except its cache mounts; the
  registries emptied. Kept: each side's download caches (our download folder, BuildKit's cache
  mounts; the classic builder has none) and the shared base both start from: the base
  node's debootstrapped layer, as the image `FROM` names and as the base node in our cache
  (whose build environments, this layer included, are our images: removed).
- teammate: a second, clean daemon (`infra.SecondDaemon`) with empty caches, holding only the
  shared base, and the registries holding what `cold` pushed. Ours: `sandbox build` (it
  pulls the nodes); BuildKit: `--cache-from` the pushed image (its inline cache); the classic
  builder: `docker pull` then `--cache-from` it; the floor: `docker pull` of our finished
  image. The daemon is restarted empty before each.
- noop: rebuild, nothing changed.
- bump-npm-tool: v1's sandbox.toml and sandbox.lock in place (re-locked beforehand), rebuild.
- bump-runtime: v2's, rebuild.

After each scenario but teammate the images are pushed, side by side, each contender to its
own local registry (`sandbox publish`, `docker push`) and the bytes each sent are counted;
the time each phase of the run took (builds, pushes, resets) goes to results.json's
`bench_s`. `--scenarios` runs some of them (cold always runs first: the others start from
it). Results: DIR/results.json, results.md, chart.png (with `--profile` also profile.md and
profile.json); logs and caches go to the work folder (`--work`, default DIR/work; with
`--keep-work` a later run keeps its locks, download caches and buildx's daemon's data).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and `builder` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import buildkit, dockerfile, infra, report
from bench.infra import BenchError, sh
from builder.core.certs import ca_bundle
from builder.core.platforms import host_platform
from builder.engine.choice import open_engine
from builder.image.assemble import ImageConfig, compose_env, image_config
from builder.image.loading import STAGE_LABEL, load_image
from builder.kinds import KINDS
from builder.model import lockfile
from builder.model.specfile import load_spec
from builder.store.cache import Cache, Layer, default_store_dir

REPO = Path(__file__).resolve().parent.parent
SANDBOX = [sys.executable, "-m", "builder"]
OURS_NAME = "sandbox-bench/ours"
DOCKER_NAME = "sandbox-bench/docker"
BUILDKIT_NAME = "sandbox-bench/buildkit"
BUILDX_NAME = "sandbox-bench/buildx"
NAMES = {"ours": OURS_NAME, "docker": DOCKER_NAME, "buildkit": BUILDKIT_NAME, "buildx": BUILDX_NAME}
BUILDKIT_CLI = "/usr/bin/docker"  # docker.io 20.10's CLI: the 28.2 one first on PATH lacks buildx
BASE_TAG = "sandbox-bench/base:latest"
SPEC = """\
[image]
name = "{name}"
registry = "{registry}"
user = "agent"
workdir = "/workspace"
env = {{ LANG = "C.UTF-8" }}

[base]
bootstrap = {{ suite = "bookworm" }}

[system]
packages = ["git", "jq", "ripgrep", "ca-certificates"]

[runtimes]
node = {{ version = "{node}", provider = "pypi" }}
python = {{ version = "3.11", provider = "apt" }}

[tools]
pip = ["ruff", "mypy"]
npm = ["@openai/codex", "{typescript}"]

[deps.web]
manager = "pnpm"
path = "web"
mode = "install"
"""
VARIANTS = {
    "v0": {"node": "22", "typescript": "typescript@5.6"},
    "v1": {"node": "22", "typescript": "typescript@5.7"},
    "v2": {"node": "24", "typescript": "typescript@5.7"},
}
SCENARIOS = [
    ("cold", "v0"),
    ("teammate", "v0"),
    ("noop", "v0"),
    ("bump-npm-tool", "v1"),
    ("bump-runtime", "v2"),
]
PNPM_FIXTURE = REPO / "tests/fixtures/deps/pnpm"


@dataclass(frozen=True, kw_only=True)
class Buildx:
    """buildx's engine: Docker 28.5 in a container, reached by the host's docker CLI with
    sid's docker-buildx plugin (DOCKER_CONFIG); it pushes to its registry's counting proxy
    on the docker0 gateway (the container cannot reach our 127.0.0.1)."""

    env: dict[str, str]  # os.environ + DOCKER_HOST, DOCKER_CONFIG
    version: str

    @property
    def host(self) -> str:
        return self.env["DOCKER_HOST"]


@dataclass
class Bench:
    """The work folder, the services, and what the contenders left on the daemon."""

    work: Path
    registries: dict[str, infra.CountedRegistry]  # each contender pushes to its own
    ca_url: str
    bundle: Path | None
    mate: infra.SecondDaemon
    user_store: Path  # the user-wide store (where set-up's `sandbox lock` builds what it needs)
    buildx: Buildx | None = None
    base_image: str = ""
    docker_ids: set[str] = field(default_factory=set)
    refs: dict[str, str] = field(default_factory=dict)  # contender -> what its push sent up
    our_layers: set[str] = field(default_factory=set)
    suite_seen: bool = False
    base_loads: int = 0  # how often the base image had to be loaded (1 unless removed)
    spent: dict[str, float] = field(default_factory=dict)  # the run's own time, by phase
    _base_config: ImageConfig = field(init=False)
    _base_layers: list[Layer] = field(init=False)

    @property
    def contenders(self) -> list[str]:
        """Who runs the scenarios, in report.CONTENDERS' order."""
        return [who for who in report.CONTENDERS if who != "buildx" or self.buildx is not None]

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the time the `with` block takes to `spent[name]` (where the run's time goes)."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.spent[name] = round(self.spent.get(name, 0.0) + time.monotonic() - started, 1)

    @property
    def project(self) -> Path:
        return self.work / "project"

    @property
    def cache(self) -> Path:
        return self.work / "cache"

    @property
    def store(self) -> Path:
        """The user-wide store of built nodes, the benchmark's own (emptied by `cold`)."""
        return self.work / "store"

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    def variant(self, name: str) -> Path:
        return self.work / "variants" / name

    @property
    def mate_dir(self) -> Path:
        """The teammate's machine: its daemon, and our cache, store and downloads there."""
        return self.work / "teammate"

    def sandbox(
        self, *args: str, log: str, teammate: bool = False, store: Path | None = None
    ) -> str:
        """Run `sandbox` on the project; our store is the benchmark's own unless `store`."""
        env = {
            **os.environ,
            "SANDBOX_CACHE_DIR": str(self.cache),
            "SANDBOX_STORE_DIR": str(store or self.store),
        }
        if teammate:
            env.update(
                SANDBOX_CACHE_DIR=str(self.mate_dir / "cache"),
                SANDBOX_STORE_DIR=str(self.mate_dir / "store"),
                SANDBOX_DOWNLOAD_DIR=str(self.mate_dir / "downloads"),
                DOCKER_HOST=self.mate.host,
            )
        spec = str(self.project / "sandbox.toml")
        return sh([*SANDBOX, "-f", spec, *args], log=self.logs / log, env=env)

    # -- set-up (untimed) ------------------------------------------------------------------

    def setup(self) -> dict[str, float]:
        """Lock the three variants, make the shared base image, write the Dockerfiles, and
        fill each side's download caches (untimed)."""
        for sub in (self.project, self.logs):
            sub.mkdir(parents=True, exist_ok=True)
        # ours as installed: its modules byte-compiled (as `make setup` does), so no sample
        # pays for compiling them where PYTHONDONTWRITEBYTECODE is set
        sh(
            [sys.executable, "-m", "compileall", "-q", str(REPO / "builder")],
            log=self.logs / "setup.log",
        )
        shutil.copytree(PNPM_FIXTURE, self.project / "web", dirs_exist_ok=True)
        lock_s = {}
        for name, values in VARIANTS.items():
            registry = self.registries["ours"].host
            text = SPEC.format(name=OURS_NAME, registry=registry, **values)
            (self.project / "sandbox.toml").write_text(text)
            started = time.monotonic()
            with self.phase("set-up: lock"):  # what it builds comes from the user's store
                self.sandbox("lock", log="lock.log", store=self.user_store)
            lock_s[name] = round(time.monotonic() - started, 1)
            folder = self.variant(name)
            folder.mkdir(parents=True, exist_ok=True)
            for file in ("sandbox.toml", "sandbox.lock"):
                shutil.copy2(self.project / file, folder / file)
        with self.phase("set-up: base"):
            self.base_image = self._base_image()
        for name in VARIANTS:
            self.install(name)
            spec = load_spec(self.project / "sandbox.toml")
            lock = lockfile.read(self.project / "sandbox.lock", KINDS)
            context = dockerfile.generate(
                spec=spec, lock=lock, platform=host_platform(), base_image=self.base_image
            )
            context.write(self.variant(name) / "docker")
            expert = buildkit.generate(
                spec=spec, lock=lock, platform=host_platform(), base_ref=BASE_TAG
            )
            expert.write(self.variant(name) / "buildkit")
            linked = buildkit.generate(
                spec=spec, lock=lock, platform=host_platform(), base_ref=BASE_TAG, link=True
            )
            linked.write(self.variant(name) / "buildx")
        with self.phase("set-up: base"):
            sh(["docker", "save", "-o", str(self.work / "base.tar"), BASE_TAG])
            if self.buildx is not None:
                base_tar = str(self.work / "base.tar")
                sh(["docker", "load", "-q", "-i", base_tar], env=self.buildx.env)
        with self.phase("set-up: fill download caches"):
            self.fill_download_caches()
        return lock_s

    def fill_download_caches(self) -> None:
        """Build v0 and v2 with ours and BuildKit (and buildx), so each side's download
        caches hold what the scenarios fetch. Ours and BuildKit are skipped when this work
        folder's last fill was of the same locks and Dockerfiles and BuildKit still has its
        cache mounts; buildx when its daemon has its cache mounts (a new daemon has none)."""
        marker = self.work / "download-caches.json"
        filled = {
            name: [
                hashlib.sha256((self.variant(name) / file).read_bytes()).hexdigest()
                for file in ("sandbox.lock", "buildkit/Dockerfile")
            ]
            for name in ("v0", "v2")
        }
        targets = set(buildkit.CACHE_TARGETS)
        same = marker.is_file() and json.loads(marker.read_text()) == filled
        who = [] if same and infra.cache_mounts() >= targets else ["ours", "buildkit"]
        if self.buildx is not None and not infra.cache_mounts(env=self.buildx.env) >= targets:
            who.append("buildx")
        if not who:
            print("  download caches already filled", file=sys.stderr, flush=True)
            return
        if "ours" in who:
            marker.unlink(missing_ok=True)
        for name in filled:
            print(
                f"  filling the download caches ({', '.join(who)}) with {name} ...",
                file=sys.stderr,
                flush=True,
            )
            self.install(name)
            if "ours" in who:
                self.build_ours()
                self.build_buildkit(name)
            if "buildx" in who:
                self.build_buildkit(name, who="buildx")
        marker.write_text(json.dumps(filled))

    def _base_image(self) -> str:
        """The base node's layer as an image (`FROM` of the Dockerfiles), and the base node
        kept aside so that `cold` keeps it in our cache too.

        Its config is the one `sandbox build` gives the system node's build environment,
        labelled as the benchmark's own, not as a build environment: that one is `sandbox
        build`'s and goes in `cold`; `sandbox gc` (and the test suite) leave this one alone.
        """
        lock = lockfile.read(self.project / "sandbox.lock", KINDS)
        base = lock.nodes(host_platform())["base"]
        entry = Cache(self.cache).entry(base.key)
        if entry is None:
            msg = f"the base node is not in {self.cache} after `sandbox lock`"
            raise BenchError(msg)
        snapshot = self.work / "base-snapshot"
        shutil.rmtree(snapshot, ignore_errors=True)
        for sub, names in (
            ("nodes", [base.key.removeprefix("sha256:") + ".json"]),
            ("layers", [la.diff_id.removeprefix("sha256:") + ".tar" for la in entry.layers]),
        ):
            (snapshot / sub).mkdir(parents=True)
            for name in names:
                os.link(self.cache / sub / name, snapshot / sub / name)
        self._base_layers = list(entry.layers)
        self._base_config = image_config(
            layers=[("base", layer) for layer in entry.layers],
            env=compose_env(entry.env, []),
            platform=host_platform(),
            epoch=lock.source_date_epoch,
            labels={dockerfile.LABEL: "base"},
        )
        self.ensure_base()
        return self._base_config.image_id

    def ensure_base(self) -> None:
        """Load the base image (tagged BASE_TAG) if the engine lacks it (something else
        removed it)."""
        if infra.image_ids(f"label={dockerfile.LABEL}=base") >= {self._base_config.image_id}:
            if infra.image_ids(repo=BASE_TAG) >= {self._base_config.image_id}:
                return
            sh(["docker", "tag", self._base_config.image_id, BASE_TAG])
            return
        cache = Cache(self.work / "base-snapshot")
        cache.ensure()
        load_image(
            engine=open_engine(),
            cache=cache,
            config=self._base_config,
            layers=self._base_layers,
            tags=[BASE_TAG],
        )
        self.base_loads += 1

    def install(self, variant: str) -> None:
        """Put a variant's sandbox.toml and sandbox.lock in place (as if just re-locked)."""
        for file in ("sandbox.toml", "sandbox.lock"):
            shutil.copy2(self.variant(variant) / file, self.project / file)

    # -- cold ------------------------------------------------------------------------------

    def _holding_ours(self) -> set[str]:
        """Any other image on the daemon that holds a layer of ours above the shared base: a
        build of the same packages elsewhere (another project, a test) makes the very same
        system layer, and the engine would not register it again, a head start `cold` must
        not have (seen: an image of the same [system] saved 151 MB of the load)."""
        above_base = self.our_layers - {layer.diff_id for layer in self._base_layers}
        return {
            image
            for image, layers in infra.image_layers(infra.image_ids()).items()
            if set(layers) & above_base
        }

    def make_cold(self) -> None:
        """Empty caches and no images on either side; the shared base stays."""
        self.our_layers |= {"sha256:" + p.stem for p in (self.cache / "layers").glob("*.tar")}
        stages = infra.image_ids(f"label={STAGE_LABEL}")
        ours = {
            image
            for image, layers in infra.image_layers(stages).items()
            if set(layers) <= self.our_layers
        }
        infra.remove_images(ours | infra.image_ids(repo=OURS_NAME) | self._holding_ours())
        shutil.rmtree(self.cache, ignore_errors=True)
        shutil.rmtree(self.store, ignore_errors=True)
        shutil.copytree(self.work / "base-snapshot", self.cache, copy_function=os.link)
        label = f"label={dockerfile.LABEL}=docker"
        leftovers = infra.built_on(self.base_image)  # from earlier runs too
        expert = infra.image_ids(f"label={dockerfile.LABEL}=buildkit", repo=BUILDKIT_NAME)
        expert |= infra.image_ids(f"label={dockerfile.LABEL}=buildkit")
        infra.remove_images(
            (self.docker_ids | infra.image_ids(label) | leftovers | expert) - {self.base_image}
        )
        self.docker_ids.clear()
        infra.prune_build_cache(self.logs / "buildkit.log")  # its cache mounts stay
        if self.buildx is not None:
            env = self.buildx.env
            linked = infra.image_ids(f"label={dockerfile.LABEL}=buildx", env=env)
            infra.remove_images(linked | infra.image_ids(repo=BUILDX_NAME, env=env), env=env)
            infra.prune_build_cache(self.logs / "buildx.log", env=env)
        for counted in self.registries.values():
            counted.registry.wipe()
        self.refs.clear()

    # -- the contenders ------------------------------------------------------------------

    def build_ours(
        self, *, teammate: bool = False
    ) -> tuple[float, dict[str, list[Any]], dict[str, Any]]:
        """Seconds, each node's [status, seconds], and the build's phases (the engine load's
        seconds, layers and bytes among them): where our time went."""
        self.suite_seen |= infra.suite_running()
        started = time.monotonic()
        out = self.sandbox("build", "--json", log="ours.log", teammate=teammate)
        seconds = time.monotonic() - started
        result = json.loads(out)
        nodes = {n["name"]: [n["status"], n["seconds"]] for n in result["nodes"]}
        return seconds, nodes, dict(result.get("phases") or {})

    def build_buildkit(
        self, variant: str, *, host: str = "", cache_from: str = "", who: str = "buildkit"
    ) -> tuple[float, int]:
        """Seconds, and the steps (RUN, COPY) BuildKit ran rather than took from cache;
        `who="buildx"`: `docker buildx build` of the `--link` Dockerfile on buildx's daemon."""
        self.suite_seen |= infra.suite_running()
        if who == "buildx":
            if self.buildx is None:
                msg = "buildx: no engine was started (--no-buildx)"
                raise BenchError(msg)
            env = self.buildx.env
            args = ["docker", "buildx", "build", "--progress=plain"]
        else:
            env = {**os.environ, "DOCKER_BUILDKIT": "1", **({"DOCKER_HOST": host} if host else {})}
            args = [BUILDKIT_CLI, "build", "--progress=plain"]
            args += ["--build-arg", "BUILDKIT_INLINE_CACHE=1"]  # for a teammate's --cache-from
        args += ["-t", f"{NAMES[who]}:latest"]
        if self.bundle is not None:
            args += ["--secret", f"id={buildkit.SECRET_ID},src={self.bundle}"]
        if cache_from:
            args += ["--cache-from", cache_from]
        started = time.monotonic()
        done = subprocess.run(
            [*args, str(self.variant(variant) / who)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        seconds = time.monotonic() - started
        log_file = self.logs / f"{who}.log"
        with log_file.open("a") as log:
            log.write(f"$ {' '.join(args)}\n{done.stdout}{done.stderr}\n")
        if done.returncode:
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            msg = f"{who}'s build failed (log: {log_file}):\n{tail}"
            raise BenchError(msg)
        steps = set(re.findall(r"^#(\d+) \[[^\]]+ \d+/\d+\] (?:RUN|COPY)", done.stderr, re.M))
        cached = set(re.findall(r"^#(\d+) CACHED", done.stderr, re.M))
        return seconds, len(steps - cached)

    def build_docker(
        self, variant: str, *, host: str = "", cache_from: str = ""
    ) -> tuple[float, int]:
        """Seconds, and the Dockerfile steps not taken from cache; with `cache_from`, the
        image is pulled first (timed: the classic builder uses only local images)."""
        self.suite_seen |= infra.suite_running()
        context = self.variant(variant) / "docker"
        env = {**os.environ, "DOCKER_BUILDKIT": "0", **({"DOCKER_HOST": host} if host else {})}
        args = ["docker", "build", "--build-arg", f"{dockerfile.CA_ARG}={self.ca_url}"]
        if cache_from:
            args += ["--cache-from", cache_from]
        else:
            self.ensure_base()
        started = time.monotonic()
        if cache_from:
            sh(["docker", "pull", "-q", cache_from], env=env, log=self.logs / "docker.log")
        out = sh([*args, "-t", f"{DOCKER_NAME}:latest", str(context)], env=env)
        seconds = time.monotonic() - started
        with (self.logs / "docker.log").open("a") as log:
            log.write(out)
        if not host:
            self.docker_ids.add(
                sh(["docker", "image", "inspect", "-f", "{{.Id}}", DOCKER_NAME]).strip()
            )
        steps = out.count("\nStep ")
        return seconds, steps - 1 - out.count("Using cache")  # FROM is never "cached"

    def push_all(self, contenders: list[str]) -> dict[str, tuple[int, int]]:
        """Every contender pushes to its own registry, side by side (pushes are not timed:
        their bytes are counted, each registry's by its own proxy)."""
        with ThreadPoolExecutor(max_workers=len(contenders)) as pool:
            pushes = {who: pool.submit(self.push, who) for who in contenders}
            return {who: push.result() for who, push in pushes.items()}

    def push(self, who: str) -> tuple[int, int]:
        """Push `who`'s image; (bytes sent, bytes the registry's storage grew by)."""
        counted = self.registries[who]
        if who == "ours":
            out: list[str] = []
            sent = counted.measure(
                lambda: out.append(self.sandbox("publish", "--json", log="publish.log"))
            )
            self.refs[who] = str(json.loads(out[0])["image"]["ref"])
            return sent
        env = self.buildx.env if who == "buildx" and self.buildx is not None else None
        remote = f"{counted.host}/{NAMES[who]}:latest"
        sh(["docker", "tag", f"{NAMES[who]}:latest", remote], env=env)
        self.refs[who] = remote
        log = self.logs / f"push-{who}.log"
        return counted.measure(lambda: sh(["docker", "push", remote], log=log, env=env))

    def size(self, who: str) -> int:
        host = self.buildx.host if who == "buildx" and self.buildx is not None else ""
        return infra.image_size(f"{NAMES[who]}:latest", host=host)


def run_repeat(
    bench: Bench,
    repeat: int,
    *,
    wait_quiet: bool,
    scenarios: list[str],
    samples: list[report.Sample],
    saved: Callable[[], None],
) -> None:
    """One pass through `scenarios` (cold first), each sample added to `samples` and then
    `saved()`; with `wait_quiet`, each scenario first waits for a quiet machine (the state
    carries over between scenarios, so pausing changes nothing else)."""
    contenders = bench.contenders
    turn = repeat % len(contenders)
    order = [*contenders[turn:], *contenders[:turn]]
    with bench.phase("cold: reset"):
        bench.make_cold()
    for name, variant in SCENARIOS:
        if name not in scenarios:
            continue
        if wait_quiet and infra.suite_running():
            wait_until_quiet()
        bench.install(variant)
        print(f"  repeat {repeat + 1}: {name} ({order[0]} first) ...", file=sys.stderr, flush=True)
        bench.suite_seen = False
        load = infra.load_average()
        if name == "teammate":
            sample = teammate(bench, repeat, order, variant)
        else:
            sample = scenario(bench, name, repeat, order, variant)
        sample = dataclasses.replace(sample, load_avg=max(load, infra.load_average()))
        print(f"    {json.dumps(dataclasses.asdict(sample))}", file=sys.stderr, flush=True)
        samples.append(sample)
        saved()


def scenario(bench: Bench, name: str, repeat: int, order: list[str], variant: str) -> report.Sample:
    """The contenders build one after the other (ours, the classic builder and BuildKit on
    the host's daemon, buildx on its own), then each pushes."""
    seconds: dict[str, float] = {}
    steps: dict[str, int] = {}
    nodes: dict[str, list[Any]] = {}
    phases: dict[str, Any] = {}
    for who in order:
        with bench.phase(f"{name}: build"):
            if who == "ours":
                seconds[who], nodes, phases = bench.build_ours()
            elif who == "docker":
                seconds[who], steps[who] = bench.build_docker(variant)
            else:
                seconds[who], steps[who] = bench.build_buildkit(variant, who=who)
    contenders = bench.contenders
    with bench.phase(f"{name}: push"):
        pushed = bench.push_all(contenders)
    return report.Sample(
        name=name,
        repeat=repeat,
        order=order,
        seconds={who: round(seconds[who], 2) for who in contenders},
        push_bytes={who: pushed[who][0] for who in contenders},
        stored_bytes={who: pushed[who][1] for who in contenders},
        size={who: bench.size(who) for who in contenders},
        steps_run=steps,
        ours_nodes=nodes,
        ours_phases=phases,
        suite_running=bench.suite_seen,
    )


def teammate(bench: Bench, repeat: int, order: list[str], variant: str) -> report.Sample:
    """Each contender but buildx on a clean second daemon, from what its registry holds; then
    the floor, `docker pull` of our finished image on a clean daemon."""
    order = [who for who in order if who != "buildx"]
    missing = [who for who in order if who not in bench.refs]
    if missing:
        msg = f"teammate: nothing pushed yet by {', '.join(missing)} (cold runs first)"
        raise BenchError(msg)
    host = bench.mate.host
    seconds: dict[str, float] = {}
    steps: dict[str, int] = {}
    size: dict[str, int] = {}
    nodes: dict[str, list[Any]] = {}
    phases: dict[str, Any] = {}
    for who in order:
        with bench.phase("teammate: reset"):
            clean_teammate(bench)
        with bench.phase("teammate: build"):
            if who == "ours":
                seconds[who], nodes, phases = bench.build_ours(teammate=True)
            elif who == "docker":
                seconds[who], steps[who] = bench.build_docker(
                    variant, host=host, cache_from=bench.refs[who]
                )
            else:
                seconds[who], steps[who] = bench.build_buildkit(
                    variant, host=host, cache_from=bench.refs[who]
                )
        size[who] = infra.image_size(f"{NAMES[who]}:latest", host=host)
    floor: dict[str, float] = {}
    for who in ("ours",):
        with bench.phase("teammate: reset"):
            clean_teammate(bench)
        with bench.phase("teammate: floor pull"):
            started = time.monotonic()
            pull = ["docker", "-H", host, "pull", "-q", bench.refs[who]]
            sh(pull, log=bench.logs / "pull.log")
            floor[who] = round(time.monotonic() - started, 2)
    with bench.phase("teammate: reset"):
        bench.mate.stop()
    return report.Sample(
        name="teammate",
        repeat=repeat,
        order=order,
        seconds={who: round(seconds[who], 2) for who in order},
        push_bytes={},
        stored_bytes={},
        size=size,
        steps_run=steps,
        ours_nodes=nodes,
        ours_phases=phases,
        pull_s=floor,
        suite_running=bench.suite_seen,
    )


def clean_teammate(bench: Bench) -> None:
    """The second daemon restarted empty but for the shared base; our caches there empty
    but for the base node (as `cold` keeps it)."""
    bench.mate.fresh()
    sh(["docker", "-H", bench.mate.host, "load", "-q", "-i", str(bench.work / "base.tar")])
    for sub in ("cache", "store", "downloads"):
        shutil.rmtree(bench.mate_dir / sub, ignore_errors=True)
    shutil.copytree(bench.work / "base-snapshot", bench.mate_dir / "cache", copy_function=os.link)


def builder_version() -> str:
    """The last commit that changed builder/, and its files changed since (what is measured)."""
    last = ["git", "-C", str(REPO), "log", "-1", "--format=%h", "--", "builder"]
    commit = sh(last, check=False).strip()
    changed = sh(["git", "-C", str(REPO), "status", "--short", "builder"], check=False).split()
    dirty = sorted({p for p in changed if p.startswith("builder/")})
    return f"{commit or '?'}" + (f" + changes to {', '.join(dirty)}" if dirty else "")


def wait_until_quiet(*, quiet_for: float = 60, poll: float = 30, limit: float = 2400) -> bool:
    """Wait until no pytest process is seen for `quiet_for` seconds; False if never."""
    deadline = time.monotonic() + limit
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        if infra.suite_running():
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        if quiet_since is not None and time.monotonic() - quiet_since >= quiet_for:
            return True
        print("  waiting until no pytest has run for 60 s ...", file=sys.stderr, flush=True)
        time.sleep(poll)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="Where results and work go.")
    parser.add_argument("--repeat", type=int, default=3, help="Repeats (medians are reported).")
    parser.add_argument(
        "--work",
        type=Path,
        help="Scratch folder: project, cache, registry, logs (emptied first) [default: OUT/work].",
    )
    parser.add_argument(
        "--keep-work",
        action="store_true",
        help="Do not empty the work folder first (locks still current are kept: for trying "
        "changes to the benchmark quickly).",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(name for name, _ in SCENARIOS),
        help="Comma-separated scenarios to run (cold always runs) [default: all].",
    )
    parser.add_argument(
        "--wait-quiet",
        action="store_true",
        help="Before starting and before each scenario, wait (up to 40 min) until no pytest "
        "has run for 60 s.",
    )
    parser.add_argument(
        "--profile", action="store_true", help="Then profile a no-op and a cold build."
    )
    parser.add_argument(
        "--no-buildx",
        action="store_true",
        help="Leave out buildx 0.29 (which runs on Docker 28.5 in a container).",
    )
    args = parser.parse_args(argv)
    known = [name for name, _ in SCENARIOS]
    asked = {name.strip() for name in args.scenarios.split(",") if name.strip()}
    if asked - set(known):
        parser.error(f"unknown scenarios {sorted(asked - set(known))}; known: {known}")
    scenarios = [name for name in known if name in asked | {"cold"}]
    out: Path = args.out.absolute()
    quiet_start = wait_until_quiet() if args.wait_quiet else not infra.suite_running()
    out.mkdir(parents=True, exist_ok=True)
    work: Path = (args.work or out / "work").absolute()
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    user_store = default_store_dir()
    os.environ["SANDBOX_STORE_DIR"] = str(work / "store")  # in-process Cache objects too
    bundle = ca_bundle()
    mate = infra.SecondDaemon(work / "teammate" / "daemon")
    ca: infra.CAServer | None = None
    version = builder_version()
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        stack.callback(mate.close)
        registries: dict[str, infra.CountedRegistry] = {}
        for who in report.CONTENDERS:
            if who == "buildx" and args.no_buildx:
                continue
            address = infra.bridge_gateway() if who == "buildx" else "127.0.0.1"
            registries[who] = infra.CountedRegistry(work / "registry" / who, address=address)
            stack.callback(registries[who].close)
            registries[who].start()
        ca = infra.CAServer(bundle) if bundle else None
        if ca is not None:
            stack.callback(ca.close)
        spent: dict[str, float] = {}
        buildx = None
        if not args.no_buildx:
            engine_started = time.monotonic()
            buildx = stack.enter_context(start_buildx(work, registries["buildx"].host))
            spent["set-up: buildx engine"] = round(time.monotonic() - engine_started, 1)
        bench = Bench(
            work=work,
            registries=registries,
            ca_url=ca.url if ca else "",
            bundle=bundle,
            mate=mate,
            user_store=user_store,
            buildx=buildx,
            spent=spent,
        )
        print(f"setting up in {work} ...", file=sys.stderr, flush=True)
        lock_s = bench.setup()
        setup_s = round(time.monotonic() - started)
        samples: list[report.Sample] = []

        def saved(incomplete: str = "") -> None:
            """Write the results of the samples so far (a run cut short keeps them)."""
            now = builder_version()
            loads = [s.load_avg for s in samples]
            extra = {
                "repeat": args.repeat,
                "quiet": quiet_start and not any(s.suite_running for s in samples),
                "load_avg": [min(loads), max(loads)],
                "lock_s": lock_s,
                "setup_s": setup_s,
                "run_s": round(time.monotonic() - started),
                "bench_s": bench.spent,
                "base_image": bench.base_image,
                "base_image_loads": bench.base_loads,
                "docker": sh(["docker", "version", "-f", "{{.Server.Version}}"]).strip(),
                **({"buildx": buildx.version} if buildx is not None else {}),
                "builder": version if version == now else f"changed: {version} -> {now}",
                "cpus": os.cpu_count(),
                **({"incomplete": incomplete} if incomplete else {}),
            }
            names = [n for n in scenarios if any(s.name == n for s in samples)]
            report.write(out, samples, names, extra)

        try:
            for repeat in range(args.repeat):
                run_repeat(
                    bench,
                    repeat,
                    wait_quiet=args.wait_quiet,
                    scenarios=scenarios,
                    samples=samples,
                    saved=saved,
                )
        except BaseException as exc:
            if samples:
                saved(incomplete=f"stopped in repeat {repeat + 1}: {exc!r}"[:500])
            raise
        saved()
        print((out / "results.md").read_text())
        if args.profile:
            from bench import profiling

            profiling.run(bench, out)
    return 0


@contextlib.contextmanager
def start_buildx(work: Path, registry: str) -> Iterator[Buildx]:
    """Docker 28.5 in a container (tests/integration/engines.py's image and start), the
    host's CLI given sid's docker-buildx plugin (copied out of that image); it pushes to
    `registry` (host:port, on the docker0 gateway where the container reaches us) over
    plain HTTP."""
    from tests.integration import engines

    with engines.running_engine(
        work=work / "buildx-engine",
        name="sbx21-bench-buildx",
        containerd_store=False,
        insecure_registries=(registry,),
        keep_data=True,  # its cache mounts, for the next run with --keep-work
    ) as engine:
        config = work / "buildx-engine" / "client"
        (config / "cli-plugins").mkdir(parents=True, exist_ok=True)
        plugin = "/usr/libexec/docker/cli-plugins/docker-buildx"
        sh(["docker", "cp", f"{engine.name}:{plugin}", str(config / "cli-plugins")])
        env = {**os.environ, **engine.env, "DOCKER_CONFIG": str(config)}
        env.pop("DOCKER_BUILDKIT", None)
        buildx_version = sh(["docker", "buildx", "version"], env=env).split()[1]
        version = f"buildx {buildx_version} on Docker Engine {engine.version} in a container"
        yield Buildx(env=env, version=version)


if __name__ == "__main__":
    sys.exit(main())
