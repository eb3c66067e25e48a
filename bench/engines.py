"""`bench/engines.py --out DIR`: the example build of tests/integration/test_engines.py timed on
each engine, the local one beside those that share no filesystem with us.

Engines: this machine's daemon (DOCKER_HOST unset: the local fast paths), and Debian sid's
Docker 28.5 in a container (tests/integration/engines.py) with the containerd image store
(plain TCP) and with overlay2 (TCP + TLS). Each build starts from a cache holding only the
debootstrapped base (a host step on every engine) and an empty user-wide store, so every
other node is built on that engine. Prints a Markdown table and writes DIR/engines.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench`, `builder`, `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration import engines
from tests.integration.test_engines import SPEC


def sandbox(root: Path, cache: Path, env: dict[str, str], *args: str) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "builder", "-f", str(root / "sandbox.toml"), *args],
        capture_output=True,
        text=True,
        env={**_no_docker_env(), "SANDBOX_CACHE_DIR": str(cache), **env},
        check=False,
    )
    if done.returncode != 0:
        msg = f"sandbox {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        raise SystemExit(msg)
    return time.monotonic() - started, done.stdout


def _no_docker_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}


def seed(base_cache: Path, cache: Path, base_key: str) -> None:
    """`cache` holding only the base node of `base_cache`."""
    shutil.rmtree(cache, ignore_errors=True)
    (cache / "nodes").mkdir(parents=True)
    (cache / "layers").mkdir()
    entry = base_cache / "nodes" / f"{base_key.removeprefix('sha256:')}.json"
    shutil.copy(entry, cache / "nodes")
    for layer in json.loads(entry.read_text())["layers"]:
        tar = f"{layer['diff_id'].removeprefix('sha256:')}.tar"
        os.link(base_cache / "layers" / tar, cache / "layers" / tar)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True)
    out = parser.parse_args().out.resolve()
    root = out / "project"
    root.mkdir(parents=True, exist_ok=True)
    (root / "sandbox.toml").write_text(SPEC)
    base_cache = out / "cache-base"
    lock_env: dict[str, str] = {}  # the user-wide store: a base built before is reused
    sandbox(root, base_cache, lock_env, "lock")
    _, text = sandbox(root, base_cache, lock_env, "build", "--json")
    base_key = next(n["key"] for n in json.loads(text)["nodes"] if n["name"] == "base")
    rows = []

    def measure(label: str, env: dict[str, str], version: str, storage: str) -> None:
        cache = out / f"cache-{storage}"
        seed(base_cache, cache, base_key)
        store = out / f"store-{storage}"
        shutil.rmtree(store, ignore_errors=True)
        run_env = {**env, "SANDBOX_STORE_DIR": str(store)}
        seconds, text = sandbox(root, cache, run_env, "build", "--json")
        noop, _ = sandbox(root, cache, run_env, "build", "--json")
        image = json.loads(text)["image"]
        rows.append(
            {
                "engine": label,
                "version": version,
                "storage": storage,
                "build_s": round(seconds, 1),
                "noop_s": round(noop, 2),
                "image": image["id"],
                "engine_id": image["engine_id"],
            }
        )
        print(rows[-1], file=sys.stderr)

    info = json.loads(
        subprocess.run(
            ["docker", "info", "--format", "{{json .}}"],
            capture_output=True,
            text=True,
            check=True,
            env=_no_docker_env(),
        ).stdout
    )
    measure("local socket", {}, info["ServerVersion"], info["Driver"])
    work = out / "engines"
    with engines.running_engine(work=work, name="bench-containerd", containerd_store=True) as e:
        measure("in a container, tcp://", e.env, e.version, e.storage)
    certs = engines.make_certs(work / "certs")
    with engines.running_engine(
        work=work, name="bench-overlay2", containerd_store=False, certs=certs
    ) as e:
        measure("in a container, tcp:// + TLS", e.env, e.version, e.storage)
    (out / "engines.json").write_text(json.dumps(rows, indent=2))
    print("| engine | version | storage | build (s) | no-op (s) | same image |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        same = "yes" if row["image"] == rows[0]["image"] else "NO"
        print(
            f"| {row['engine']} | {row['version']} | {row['storage']} | {row['build_s']} "
            f"| {row['noop_s']} | {same} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
