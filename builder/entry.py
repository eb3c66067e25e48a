"""The `sandbox` command's entry point: a plain `sandbox build` skips typer.

Importing typer (with click and rich) costs about 0.1 s, more than Docker's own no-op build
takes. So the command lines a CI job or a pre-commit hook runs over and over,

    sandbox [-f FILE] [--cache-dir DIR] build [--json] [-j N]

go straight to `buildrun.run_build`, the function the typer command calls too. Every other
command line, `--help` included, goes to the typer app (cli.py), which parses and explains.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from builder.buildrun import BuildRequest


def main() -> None:
    request = quick_build(sys.argv[1:])
    if request is None:
        from builder.cli import main as full

        full()
        return
    from builder.buildrun import run_build
    from builder.errors import BuilderError

    try:
        run_build(request)
    except BuilderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was kept; run the command again", file=sys.stderr)
        sys.exit(130)


def quick_build(argv: list[str]) -> BuildRequest | None:
    """The request of a plain `sandbox build` command line, or None for anything else."""
    values: dict[str, str] = {}
    flags: set[str] = set()
    words = iter(argv)
    command = None
    for word in words:
        name, eq, inline = word.partition("=")
        allowed = _BUILD_OPTIONS if command else _GLOBAL_OPTIONS
        if word in _BUILD_FLAGS and command:
            flags.add(word)
        elif name in allowed:
            value = inline if eq else next(words, None)
            if value is None or value.startswith("-"):
                return None
            values[allowed[name]] = value
        elif word == "build" and command is None:
            command = word
        else:
            return None
    if command is None:
        return None
    cache_dir = values.get("cache_dir") or os.environ.get("SANDBOX_CACHE_DIR")
    jobs = values.get("jobs", "2")
    if not jobs.isdigit() or int(jobs) < 1:
        return None  # typer explains the mistake
    return BuildRequest(
        spec_file=Path(values.get("file", "sandbox.toml")).absolute(),
        cache_dir=Path(cache_dir).absolute() if cache_dir else None,
        as_json="--json" in flags,
        jobs=int(jobs),
    )


_GLOBAL_OPTIONS = {"-f": "file", "--file": "file", "--cache-dir": "cache_dir"}
_BUILD_OPTIONS = {"-j": "jobs", "--jobs": "jobs"}
_BUILD_FLAGS = {"--json"}
