"""`bench/multiplatform.py --out DIR`: a cold build of each platform of one lock, here.

The workload is the multi-platform integration test's small spec (jq, Debian's python, node
from PyPI, pyflakes, esbuild), locked once for linux/amd64 and linux/arm64 (untimed). Then
each platform is built cold, one after the other, on this machine's daemon: linux/amd64
natively, linux/arm64 under QEMU user emulation (builder/engine/emulation.py). Cold here means an
empty cache dir and user-wide store of nodes (the base too: its debootstrap is the biggest
emulated step) and none of the stage images the previous build left; the download folder
is kept, as in bench/run.py's cold. `--repeat N` takes medians.

The results go into DIR/results.json under `multiplatform` and into DIR/results.md as its
"Several platforms" section; bench/run.py and bench/report.py keep both when they rewrite
the files. A run takes about 10 minutes on 2 CPUs; it is optional (`make test` never runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from string import Template
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and `builder` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import infra, report
from bench.infra import BenchError, sh
from bench.run import builder_version
from builder.core.platforms import host_platform
from builder.engine.emulation import emulation
from builder.image.loading import STAGE_LABEL

NAME = "sandbox-bench/multiplatform"
MULTIPLATFORM_SPEC = "tests/fixtures/multiplatform/sandbox.toml.template"
PLATFORMS = ("linux/amd64", "linux/arm64")
# The integration test's spec (tests/fixtures/multiplatform), under the benchmark's name.
SPEC = Template(
    (Path(__file__).resolve().parent.parent / MULTIPLATFORM_SPEC).read_text()
).substitute(name=NAME, registry="")


def sandbox(work: Path, *args: str, platform: str = "") -> str:
    env = {
        **os.environ,
        "SANDBOX_CACHE_DIR": str(work / "cache"),
        "SANDBOX_STORE_DIR": str(work / "store"),
    }
    command = [sys.executable, "-m", "builder", "-f", str(work / "sandbox.toml"), *args]
    if platform:
        command += ["--platform", platform]
    return sh(command, env=env, log=work / "sandbox.log")


def make_cold(work: Path) -> None:
    """No cache dir, no store, and none of our images (stages included) in the engine."""
    ours = {"sha256:" + p.stem for p in (work / "cache" / "layers").glob("*.tar")}
    stages = infra.image_ids(f"label={STAGE_LABEL}")
    built = {image for image, layers in infra.image_layers(stages).items() if set(layers) <= ours}
    infra.remove_images(built | infra.image_ids(repo=NAME))
    shutil.rmtree(work / "cache", ignore_errors=True)
    shutil.rmtree(work / "store", ignore_errors=True)


def cold_build(work: Path, platform: str) -> dict[str, Any]:
    make_cold(work)
    load = infra.load_average()
    started = time.monotonic()
    built = json.loads(sandbox(work, "build", "--json", platform=platform))
    seconds = round(time.monotonic() - started, 2)
    nodes = {n["name"]: round(float(n["seconds"]), 1) for n in built["nodes"]}
    return {"seconds": seconds, "nodes": nodes, "load_avg": load, "image": built["image"]["id"]}


def summarize(samples: dict[str, list[dict[str, Any]]], extra: dict[str, Any]) -> dict[str, Any]:
    """Per platform the median build and, per node, the median of its seconds."""
    platforms = {}
    for platform, runs in samples.items():
        names = list(runs[0]["nodes"])
        platforms[platform] = {
            "seconds": round(statistics.median(r["seconds"] for r in runs), 1),
            "nodes": {n: round(statistics.median(r["nodes"][n] for r in runs), 1) for n in names},
            "images": sorted({r["image"] for r in runs}),
        }
    return {"platforms": platforms, "samples": samples, **extra}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="Where results.json/md are.")
    parser.add_argument("--repeat", type=int, default=1, help="Repeats (medians are reported).")
    parser.add_argument(
        "--work", type=Path, help="Scratch folder (emptied first) [default: OUT/work-multi]."
    )
    args = parser.parse_args(argv)
    out: Path = args.out.absolute()
    work: Path = (args.work or out / "work-multi").absolute()
    host = host_platform()
    platforms = sorted(PLATFORMS, key=lambda p: p != host)  # native first
    for platform in platforms[1:]:
        found = emulation(platform)
        if not found.available:
            msg = f"no emulation of {platform} here ({found.detail}); see `sandbox doctor`"
            raise BenchError(msg)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "sandbox.toml").write_text(SPEC)
    started = time.monotonic()
    sandbox(work, "lock")
    lock_s = round(time.monotonic() - started, 1)
    samples: dict[str, list[dict[str, Any]]] = {p: [] for p in platforms}
    try:
        for _ in range(args.repeat):
            for platform in platforms:
                print(f"cold build of {platform} ...", file=sys.stderr, flush=True)
                samples[platform].append(cold_build(work, platform))
    finally:
        make_cold(work)
    loads = [s["load_avg"] for runs in samples.values() for s in runs]
    extra = {
        "repeat": args.repeat,
        "lock_s": lock_s,
        "load_avg": [min(loads), max(loads)],
        "suite_running": infra.suite_running(),
        "cpus": os.cpu_count(),
        "builder": builder_version(),
        "host": host,
        "emulator": emulation(platforms[-1]).detail,
    }
    report.write_multiplatform(out, summarize(samples, extra))
    print((out / "results.md").read_text().split(report.MULTIPLATFORM_HEADING, 1)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
