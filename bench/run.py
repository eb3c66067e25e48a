"""`bench/run.py --out DIR [--repeat N]`: `sandbox build` against `docker build`, in one run.

The workload (SPEC): system packages, node 22 from PyPI, python from apt, npm tools
(@openai/codex, typescript) and pip tools (ruff, mypy), and a pnpm project in `install` mode.
Three variants are locked once, untimed: v0; v1 = one npm tool's version changed; v2 = v1 with
node's major changed. Each has its Dockerfile generated from its sandbox.lock
(bench/dockerfile.py). Per repeat, on the same daemon, the two contenders alternate (the first
one swaps every repeat) through the scenarios:

- cold: our cache dir and user-wide store of nodes emptied and our images removed; the
  Dockerfile's images removed and `docker builder prune -af`; the registry emptied. Kept:
  the shared base both start from: the base node's debootstrapped layer, as the image `FROM`
  names and as the base node in our cache (whose build environments, this layer included,
  are our images: removed).
- noop: rebuild, nothing changed.
- bump-npm-tool: v1's sandbox.toml and sandbox.lock in place (re-locked beforehand), rebuild.
- bump-runtime: v2's, rebuild.

After each scenario both images are pushed to a local registry (`sandbox publish`, `docker
push`) and the bytes sent are counted. Results: DIR/results.json, results.md, chart.png (with
`--profile` also profile.md and profile.json); logs and caches go to the work folder (`--work`,
default DIR/work).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `builder` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import dockerfile, infra, report
from bench.infra import BenchError, sh
from builder import lockfile
from builder.assemble import ImageConfig, compose_env, image_config
from builder.cache import Cache, Layer
from builder.doctor import ca_bundle
from builder.engine import DockerEngine
from builder.loading import STAGE_LABEL, load_image
from builder.platforms import host_platform
from builder.spec import load_spec

REPO = Path(__file__).resolve().parent.parent
SANDBOX = [sys.executable, "-m", "builder"]
OURS_NAME = "sandbox-bench/ours"
DOCKER_NAME = "sandbox-bench/docker"
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
SCENARIOS = [("cold", "v0"), ("noop", "v0"), ("bump-npm-tool", "v1"), ("bump-runtime", "v2")]
PNPM_FIXTURE = REPO / "tests/fixtures/deps/pnpm"


@dataclass
class Bench:
    """The work folder, the services, and what the contenders left on the daemon."""

    work: Path
    registry: infra.LocalRegistry
    proxy: infra.CountingProxy
    ca_url: str
    base_image: str = ""
    docker_ids: set[str] = field(default_factory=set)
    our_layers: set[str] = field(default_factory=set)
    suite_seen: bool = False
    base_loads: int = 0  # how often the base image had to be loaded (1 unless removed)
    _base_config: ImageConfig = field(init=False)
    _base_layers: list[Layer] = field(init=False)

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

    def sandbox(self, *args: str, log: str) -> str:
        env = {
            **os.environ,
            "SANDBOX_CACHE_DIR": str(self.cache),
            "SANDBOX_STORE_DIR": str(self.store),
        }
        spec = str(self.project / "sandbox.toml")
        return sh([*SANDBOX, "-f", spec, *args], log=self.logs / log, env=env)

    # -- set-up (untimed) ------------------------------------------------------------------

    def setup(self) -> dict[str, float]:
        """Lock the three variants, make the shared base image, write the Dockerfiles."""
        for sub in (self.project, self.logs):
            sub.mkdir(parents=True, exist_ok=True)
        shutil.copytree(PNPM_FIXTURE, self.project / "web", dirs_exist_ok=True)
        lock_s = {}
        for name, values in VARIANTS.items():
            registry = f"127.0.0.1:{self.proxy.port}"
            text = SPEC.format(name=OURS_NAME, registry=registry, **values)
            (self.project / "sandbox.toml").write_text(text)
            started = time.monotonic()
            self.sandbox("lock", log="lock.log")
            lock_s[name] = round(time.monotonic() - started, 1)
            folder = self.variant(name)
            folder.mkdir(parents=True, exist_ok=True)
            for file in ("sandbox.toml", "sandbox.lock"):
                shutil.copy2(self.project / file, folder / file)
        self.base_image = self._base_image()
        for name in VARIANTS:
            self.install(name)
            spec = load_spec(self.project / "sandbox.toml")
            lock = lockfile.read(self.project / "sandbox.lock")
            context = dockerfile.generate(
                spec=spec, lock=lock, platform=host_platform(), base_image=self.base_image
            )
            context.write(self.variant(name) / "docker")
        return lock_s

    def _base_image(self) -> str:
        """The base node's layer as an image (`FROM` of the Dockerfiles), and the base node
        kept aside so that `cold` keeps it in our cache too.

        Its config is the one `sandbox build` gives the system node's build environment,
        labelled as the benchmark's own, not as a build environment: that one is `sandbox
        build`'s and goes in `cold`; `sandbox gc` (and the test suite) leave this one alone.
        """
        lock = lockfile.read(self.project / "sandbox.lock")
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
        """Load the base image if the engine lacks it (something else removed it)."""
        if infra.image_ids(f"label={dockerfile.LABEL}=base") >= {self._base_config.image_id}:
            return
        cache = Cache(self.work / "base-snapshot")
        cache.ensure()
        load_image(
            engine=DockerEngine(),
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

    def make_cold(self) -> None:
        """Empty caches and no images on either side; the shared base stays."""
        self.our_layers |= {"sha256:" + p.stem for p in (self.cache / "layers").glob("*.tar")}
        stages = infra.image_ids(f"label={STAGE_LABEL}")
        ours = {
            image
            for image, layers in infra.image_layers(stages).items()
            if set(layers) <= self.our_layers
        }
        infra.remove_images(ours | infra.image_ids(repo=OURS_NAME))
        shutil.rmtree(self.cache, ignore_errors=True)
        shutil.rmtree(self.store, ignore_errors=True)
        shutil.copytree(self.work / "base-snapshot", self.cache, copy_function=os.link)
        label = f"label={dockerfile.LABEL}=docker"
        leftovers = infra.built_on(self.base_image)  # from earlier runs too
        infra.remove_images(
            (self.docker_ids | infra.image_ids(label) | leftovers) - {self.base_image}
        )
        self.docker_ids.clear()
        sh(["docker", "builder", "prune", "-af"], log=self.logs / "docker.log")
        self.registry.wipe()

    # -- the two contenders ----------------------------------------------------------------

    def build_ours(self) -> tuple[float, list[str]]:
        self.suite_seen |= infra.suite_running()
        started = time.monotonic()
        out = self.sandbox("build", "--json", log="ours.log")
        seconds = time.monotonic() - started
        result = json.loads(out)
        return seconds, [n["name"] for n in result["nodes"] if n["status"] == "built"]

    def build_docker(self, variant: str) -> tuple[float, int]:
        self.suite_seen |= infra.suite_running()
        self.ensure_base()
        context = self.variant(variant) / "docker"
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}
        args = ["docker", "build", "--build-arg", f"{dockerfile.CA_ARG}={self.ca_url}"]
        started = time.monotonic()
        out = sh([*args, "-t", f"{DOCKER_NAME}:latest", str(context)], env=env)
        seconds = time.monotonic() - started
        with (self.logs / "docker.log").open("a") as log:
            log.write(out)
        self.docker_ids.add(
            sh(["docker", "image", "inspect", "-f", "{{.Id}}", DOCKER_NAME]).strip()
        )
        steps = out.count("\nStep ")
        return seconds, steps - 1 - out.count("Using cache")  # FROM is never "cached"

    def push_ours(self) -> tuple[int, int]:
        return self._measure(lambda: self.sandbox("publish", "--json", log="publish.log"))

    def push_docker(self) -> tuple[int, int]:
        remote = f"127.0.0.1:{self.proxy.port}/{DOCKER_NAME}:latest"
        sh(["docker", "tag", f"{DOCKER_NAME}:latest", remote])
        return self._measure(lambda: sh(["docker", "push", remote], log=self.logs / "push.log"))

    def _measure(self, push: Callable[[], object]) -> tuple[int, int]:
        """(bytes sent to the registry, bytes its storage grew by) during `push()`."""
        before, sent = self.registry.blobs(), self.proxy.sent
        push()
        grown = sum(size for d, size in self.registry.blobs().items() if d not in before)
        return self.proxy.sent - sent, grown


def run_repeat(bench: Bench, repeat: int, *, wait_quiet: bool) -> list[report.Sample]:
    """One pass through SCENARIOS; with `wait_quiet`, each scenario first waits for a quiet
    machine (the state carries over between scenarios, so pausing changes nothing else)."""
    first = "ours" if repeat % 2 == 0 else "docker"
    samples = []
    bench.make_cold()
    for name, variant in SCENARIOS:
        if wait_quiet and infra.suite_running():
            wait_until_quiet()
        bench.install(variant)
        print(f"  repeat {repeat + 1}: {name} ({first} first) ...", file=sys.stderr, flush=True)
        bench.suite_seen = False
        order = ["ours", "docker"] if first == "ours" else ["docker", "ours"]
        times: dict[str, float] = {}
        built: list[str] = []
        steps = 0
        for who in order:
            if who == "ours":
                times[who], built = bench.build_ours()
            else:
                times[who], steps = bench.build_docker(variant)
        ours_push, ours_stored = bench.push_ours()
        docker_push, docker_stored = bench.push_docker()
        sample = report.Sample(
            name=name,
            repeat=repeat,
            first=first,
            ours_s=round(times["ours"], 2),
            docker_s=round(times["docker"], 2),
            ours_push_bytes=ours_push,
            docker_push_bytes=docker_push,
            ours_stored_bytes=ours_stored,
            docker_stored_bytes=docker_stored,
            ours_built=built,
            docker_steps_run=steps,
            ours_size=infra.image_size(f"{OURS_NAME}:latest"),
            docker_size=infra.image_size(f"{DOCKER_NAME}:latest"),
            suite_running=bench.suite_seen,
        )
        print(f"    {json.dumps(sample.__dict__)}", file=sys.stderr, flush=True)
        samples.append(sample)
    return samples


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
        "--wait-quiet",
        action="store_true",
        help="Before starting and before each scenario, wait (up to 40 min) until no pytest "
        "has run for 60 s.",
    )
    parser.add_argument(
        "--profile", action="store_true", help="Then profile a no-op and a cold build."
    )
    args = parser.parse_args(argv)
    out: Path = args.out.absolute()
    quiet_start = wait_until_quiet() if args.wait_quiet else not infra.suite_running()
    out.mkdir(parents=True, exist_ok=True)
    work: Path = (args.work or out / "work").absolute()
    shutil.rmtree(work, ignore_errors=True)
    os.environ["SANDBOX_STORE_DIR"] = str(work / "store")  # in-process Cache objects too
    registry = infra.LocalRegistry(work / "registry")
    registry.start()
    proxy = infra.CountingProxy(registry.port)
    bundle = ca_bundle()
    ca = infra.CAServer(bundle) if bundle else None
    bench = Bench(work=work, registry=registry, proxy=proxy, ca_url=ca.url if ca else "")
    version = builder_version()
    try:
        print(f"setting up in {work} ...", file=sys.stderr, flush=True)
        lock_s = bench.setup()
        samples: list[report.Sample] = []
        for repeat in range(args.repeat):
            samples += run_repeat(bench, repeat, wait_quiet=args.wait_quiet)
        now = builder_version()
        extra = {
            "repeat": args.repeat,
            "quiet": quiet_start and not any(s.suite_running for s in samples),
            "lock_s": lock_s,
            "base_image": bench.base_image,
            "base_image_loads": bench.base_loads,
            "docker": sh(["docker", "version", "-f", "{{.Server.Version}}"]).strip(),
            "builder": version if version == now else f"changed in the run: {version} -> {now}",
            "cpus": os.cpu_count(),
        }
        report.write(out, samples, [name for name, _ in SCENARIOS], extra)
        print((out / "results.md").read_text())
        if args.profile:
            from bench import profiling

            profiling.run(bench, out)
    finally:
        proxy.close()
        if ca is not None:
            ca.close()
        registry.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
