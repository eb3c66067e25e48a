"""Where `sandbox build`'s time goes: a no-op rebuild, a cold build and the two bumps.

- no-op: wall time of the command against `python -c pass` and `import builder.cli.app`;
  `python -X importtime` (the biggest top-level imports); cProfile of the build itself,
  in-process, after the imports (what is left besides importing).
- cold, bump-npm-tool, bump-runtime: the build run in-process with timers wrapped around the
  engine calls and the layer work (run, commit, save, normalize, load, ...): seconds summed
  per operation (two nodes run at once, so the sum can exceed the wall time), and each
  node's seconds.
- the cached layers' sizes, plain and gzipped (what a compressed push would send).

Nothing in builder/ is changed: the timers are put in place for this process only.
Writes DIR/profile.md and DIR/profile.json.
"""

from __future__ import annotations

import contextlib
import cProfile
import functools
import importlib
import io
import json
import os
import pstats
import re
import statistics
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

# (module, class or None, names) whose time the cold profile adds up.
TIMED = [
    ("builder.engine.docker", "DockerEngine", ["run", "commit", "save", "load", "remove_image"]),
    ("builder.store.layers", None, ["normalize_tar", "tar_directory"]),
    ("builder.net.downloads", None, ["fetch"]),
    ("builder.core.unpack", None, ["unpack"]),
    ("builder.kinds.base", "Base", ["build"]),
    ("builder.kinds.system", "System", ["build"]),
    ("builder.kinds.runtime", "Runtime", ["build"]),
    ("builder.kinds.pip", "PipTools", ["build"]),
    ("builder.kinds.pip.venv", None, ["lay_venv"]),
    ("builder.kinds.npm", "NpmTools", ["build"]),
    ("builder.kinds.npm.tree", None, ["assemble_npm_tree"]),
    ("builder.kinds.bin_tools", "BinTools", ["build"]),
    ("builder.kinds.deps", "Deps", ["build"]),
    ("builder.kinds.layer", None, ["capture"]),
    ("builder.image.loading", None, ["load_image"]),
]
HEAVY = ("networkx", "docker", "typer", "rich", "click", "requests", "tomlkit")
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")


class Workspace(Protocol):
    """What the profile asks of the benchmark's work folder (run.py's `Bench` is one): where
    the project and our cache are, how to empty the caches, and how to put a variant's
    sandbox.toml and sandbox.lock in place."""

    @property
    def project(self) -> Path: ...

    @property
    def cache(self) -> Path: ...

    def make_cold(self) -> None: ...

    def install(self, variant: str) -> None: ...


def run(bench: Workspace, out: Path) -> dict[str, Any]:
    """Profile a no-op rebuild of what is built now, a cold build of v0, then the bumps."""
    print("profiling a no-op build ...", file=sys.stderr, flush=True)
    result = {"noop": noop(bench)}
    print("profiling a cold build ...", file=sys.stderr, flush=True)
    bench.make_cold()
    bench.install("v0")
    result["cold"] = instrumented(bench)
    print("profiling bump-npm-tool ...", file=sys.stderr, flush=True)
    bench.install("v1")
    result["bump-npm-tool"] = instrumented(bench)
    print("profiling bump-runtime ...", file=sys.stderr, flush=True)
    bench.install("v2")
    result["bump-runtime"] = instrumented(bench)
    print("timing docker load of archives ...", file=sys.stderr, flush=True)
    result["load"] = load_costs(bench)
    print("compressing the layers (what a gzip push would send) ...", file=sys.stderr, flush=True)
    result["layers"] = layer_sizes(bench)
    (out / "profile.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "profile.md").write_text(markdown(result))
    return result


def _timed(args: list[str], env: dict[str, str], times: int = 5) -> float:
    seconds = []
    for _ in range(times):
        started = time.monotonic()
        subprocess.run(args, env=env, capture_output=True, check=True)
        seconds.append(time.monotonic() - started)
    return round(statistics.median(seconds), 3)


def noop(bench: Workspace) -> dict[str, Any]:
    env = {**os.environ, "SANDBOX_CACHE_DIR": str(bench.cache)}
    spec = str(bench.project / "sandbox.toml")
    command = [sys.executable, "-m", "builder", "-f", spec, "build", "--json"]
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *command[1:]],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    top: list[tuple[str, float]] = []
    packages: dict[str, float] = {}
    for match in _IMPORT_LINE.finditer(done.stderr):
        seconds = int(match[2]) / 1e6
        if not match[3]:  # a top-level import (no indent): its cumulative time
            top.append((match[4], seconds))
        if match[4] in HEAVY:  # imported once, wherever: its own cumulative time
            packages[match[4]] = seconds
    top.sort(key=lambda item: -item[1])
    return {
        "wall_s": _timed(command, env),
        "python_startup_s": _timed([sys.executable, "-c", "pass"], env),
        "import_cli_s": _timed([sys.executable, "-c", "import builder.cli.app"], env),
        "import_cli_and_build_s": _timed(
            [
                sys.executable,
                "-c",
                "import builder.cli.app, builder.actions.build, builder.engine.docker, docker",
            ],
            env,
        ),
        "imports_total_s": round(sum(t for _, t in top), 3),
        "top_imports": [{"module": m, "s": round(t, 3)} for m, t in top[:12]],
        "third_party": {m: round(t, 3) for m, t in sorted(packages.items(), key=lambda i: -i[1])},
        "in_process": _cprofile(spec, str(bench.cache)),
    }


def _cli(spec: str, cache: str) -> Callable[[], None]:
    from builder.cli.app import app

    def call() -> None:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            app(["-f", spec, "--cache-dir", cache, "build", "--json"], standalone_mode=False)

    return call


def _cprofile(spec: str, cache: str) -> dict[str, Any]:
    call = _cli(spec, cache)
    call()  # first call: lazy imports inside the commands happen here, not below
    profiler = cProfile.Profile()
    started = time.monotonic()
    profiler.runcall(call)
    wall = time.monotonic() - started
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(18)
    return {"wall_s": round(wall, 3), "top_cumulative": _trim(text.getvalue())}


def _trim(text: str) -> list[str]:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return [line.rstrip() for line in lines[start:] if line.strip()]


def load_costs(bench: Workspace, times: int = 3) -> dict[str, float]:
    """`docker load` of the current image's layers, all already in the engine, as a new image:
    the full archive `sandbox build` writes, against one listing the layers without their tars
    (what DESIGN.md §5 asks for: the engine skips layers whose chain it has)."""
    from builder.core.platforms import host_platform
    from builder.engine.choice import open_engine
    from builder.image import assemble
    from builder.kinds import KINDS
    from builder.model import lockfile
    from builder.store.cache import Cache

    cache = Cache(bench.cache)
    lock = lockfile.read(bench.project / "sandbox.lock", KINDS)
    nodes = lock.nodes(host_platform())
    entries = [cache.entry(node.key) for node in nodes.values()]
    layers = [(e.name, la) for e in entries if e is not None for la in e.layers]
    engine = open_engine()
    seconds: dict[str, list[float]] = {"full": [], "manifest_only": []}
    for attempt in range(times):
        config = assemble.image_config(
            layers=layers,
            env={},
            platform=host_platform(),
            epoch=lock.source_date_epoch,
            labels={"dev.sandbox-bench.load-test": str(attempt)},
        )
        for kind in seconds:
            started = time.monotonic()
            engine.load(
                assemble.archive_chunks(
                    config=config,
                    layers=[la for _, la in layers],
                    cache=cache,
                    tags=[],
                    present=0 if kind == "full" else len(layers),
                )
            )
            seconds[kind].append(time.monotonic() - started)
        engine.remove_image(config.image_id)  # after both: "manifest_only" needs the layers
    size = sum(la.size for _, la in layers)
    return {
        "layers_mb": round(size / 1e6, 1),
        **{f"{k}_s": round(statistics.median(v), 2) for k, v in seconds.items()},
    }


def layer_sizes(bench: Workspace) -> dict[str, dict[str, int]]:
    """Each cached node's layer: its size, and its size gzipped (level 6, as docker push)."""
    found: dict[str, dict[str, int]] = {}
    for entry_file in sorted((bench.cache / "nodes").glob("*.json")):
        entry = json.loads(entry_file.read_text())
        for layer in entry["layers"]:
            path = bench.cache / "layers" / (layer["diff_id"].removeprefix("sha256:") + ".tar")
            packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: the gzip container
            packed = 0
            with path.open("rb") as data:
                while chunk := data.read(1 << 20):
                    packed += len(packer.compress(chunk))
            packed += len(packer.flush())
            key = f"{entry['name']} {layer['diff_id'][7:19]}"
            found[key] = {"bytes": path.stat().st_size, "gzip_bytes": packed}
    return found


def instrumented(bench: Workspace) -> dict[str, Any]:
    """A build in this process with TIMED wrapped: seconds per node and per operation."""
    totals: dict[str, list[float]] = {}
    lock = threading.Lock()
    output = io.StringIO()
    started = time.monotonic()
    with _timers(totals, lock), contextlib.redirect_stdout(output):
        from builder.cli.app import app

        spec = str(bench.project / "sandbox.toml")
        app(["-f", spec, "--cache-dir", str(bench.cache), "build", "--json"], standalone_mode=False)
    wall = time.monotonic() - started
    nodes = json.loads(output.getvalue())["nodes"]
    return {
        "wall_s": round(wall, 1),
        "nodes": {n["name"]: {"status": n["status"], "s": n["seconds"]} for n in nodes},
        "operations": {
            name: {"s": round(t, 1), "calls": int(c)}
            for name, (t, c) in sorted(totals.items(), key=lambda kv: -kv[1][0])
        },
    }


@contextlib.contextmanager
def _timers(totals: dict[str, list[float]], lock: threading.Lock) -> Iterator[None]:
    """Wrap every TIMED function (wherever it was imported to) with a timer."""
    for name in (
        "builder.actions.build",
        "builder.realize.execute",
        "builder.kinds",
        "builder.cli.app",
    ):
        importlib.import_module(name)
    undo: list[tuple[object, str, object]] = []
    for module_name, class_name, names in TIMED:
        source = importlib.import_module(module_name)
        owner: object = getattr(source, class_name) if class_name else source
        for name in names:
            original = getattr(owner, name)
            label = f"{class_name or module_name.removeprefix('builder.')}.{name}"
            wrapped = _timer(original, label, totals, lock)
            holders = [owner] if class_name else _holders(original)
            for holder in holders:
                undo.append((holder, name if class_name else _attr(holder, original), original))
                setattr(holder, undo[-1][1], wrapped)
    try:
        yield
    finally:
        for holder, attr, original in reversed(undo):
            setattr(holder, attr, original)


def _holders(function: object) -> list[object]:
    return [
        m
        for name, m in list(sys.modules.items())
        if name.startswith("builder") and any(v is function for v in vars(m).values())
    ]


def _attr(holder: object, function: object) -> str:
    return next(k for k, v in vars(holder).items() if v is function)


def _timer(
    function: Any, label: str, totals: dict[str, list[float]], lock: threading.Lock
) -> Callable[..., Any]:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return function(*args, **kwargs)
        finally:
            with lock:
                entry = totals.setdefault(label, [0.0, 0])
                entry[0] += time.monotonic() - started
                entry[1] += 1

    return timed


def markdown(result: dict[str, Any]) -> str:
    noop = result["noop"]
    lines = [
        "## No-op rebuild",
        "",
        f"- wall: {noop['wall_s']} s; python startup {noop['python_startup_s']} s; "
        f"`import builder.cli.app` {noop['import_cli_s']} s; with builder.actions.build, "
        f"builder.engine.docker and docker {noop['import_cli_and_build_s']} s",
        f"- in-process, imports already done: {noop['in_process']['wall_s']} s",
        "",
        "Top-level imports of the no-op build (`python -X importtime`, cumulative):",
        "",
        "| module | s |",
        "| --- | ---: |",
        *[f"| {i['module']} | {i['s']:.3f} |" for i in noop["top_imports"]],
        "",
        "Third-party packages among them (cumulative, wherever first imported):",
        "",
        "| package | s |",
        "| --- | ---: |",
        *[f"| {m} | {t:.3f} |" for m, t in noop["third_party"].items()],
        "",
        "cProfile of the in-process no-op build (after imports):",
        "",
        "```",
        *noop["in_process"]["top_cumulative"],
        "```",
    ]
    for name in ("cold", "bump-npm-tool", "bump-runtime"):
        build = result[name]
        lines += [
            "",
            f"## {name} build, in-process with timers",
            "",
            f"- wall: {build['wall_s']} s",
            "",
            "| node | status | s |",
            "| --- | --- | ---: |",
            *[f"| {n} | {v['status']} | {v['s']} |" for n, v in build["nodes"].items()],
            "",
            "| operation (summed over threads) | s | calls |",
            "| --- | ---: | ---: |",
            *[f"| {n} | {v['s']} | {v['calls']} |" for n, v in build["operations"].items()],
        ]
    load = result["load"]
    lines += [
        "",
        "## Loading an image whose layers the engine already has",
        "",
        f"The current image's {load['layers_mb']} MB of layers, as a new image: the full "
        f"archive `sandbox build` writes and loads takes {load['full_s']} s; an archive "
        f"listing the layers without their tars loads in {load['manifest_only_s']} s.",
    ]
    lines += [
        "",
        "## Layers in the cache: size, and gzipped (level 6, as `docker push` sends them)",
        "",
        "| node layer | MB | gzip MB |",
        "| --- | ---: | ---: |",
        *[
            f"| {n} | {v['bytes'] / 1e6:.1f} | {v['gzip_bytes'] / 1e6:.1f} |"
            for n, v in result["layers"].items()
        ],
    ]
    return "\n".join(lines) + "\n"
