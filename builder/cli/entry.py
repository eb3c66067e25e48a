"""The `sandbox` command's entry point: a plain `sandbox build` skips typer.

Importing typer (with click and rich) costs about 0.1 s, more than Docker's own no-op build
takes. So the command lines a CI job or a pre-commit hook runs over and over,

    sandbox [-f FILE] [--cache-dir DIR] build [--json] [-j N] [--progress MODE]

first try `noop.replay` (the recorded answer of a build with nothing to do, checked against
the files and the daemon), then go to `buildrun.run_build`, the function the typer command
calls too. Every other command line, `--help` included, goes to the typer app (cli/app.py), which
parses and explains. Until the replay has had its chance, nothing heavier than the standard
library's basics is imported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from builder.core.layout import find_spec, project_cache_dir

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (2.5 ms)

if TYPE_CHECKING:
    from builder.actions.buildrun import BuildRequest


def main() -> None:
    options = build_options(sys.argv[1:])
    if options is None:
        from builder.cli.app import main as full

        full()
        return
    from builder.image import noop

    spec_file, cache_dir = _paths(options)
    cache = project_cache_dir(spec_file, cache_dir)
    if noop.replay(spec_file=spec_file, cache_dir=cache, as_json="json" in options):
        return
    from builder.actions.buildrun import run_build
    from builder.core.errors import BuilderError

    try:
        run_build(_request(options))
    except BuilderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was kept; run the command again", file=sys.stderr)
        sys.exit(130)


def quick_build(argv: list[str]) -> BuildRequest | None:
    """The request of a plain `sandbox build` command line, or None for anything else."""
    options = build_options(argv)
    return None if options is None else _request(options)


def build_options(argv: list[str]) -> dict[str, str] | None:
    """The options of a plain `sandbox build` command line (`file`, `cache_dir`, `jobs`,
    `json`, `progress`; the environment's SANDBOX_CACHE_DIR filled in), or None for anything
    else."""
    values: dict[str, str] = {}
    words = iter(argv)
    command = None
    for word in words:
        name, eq, inline = word.partition("=")
        allowed = _BUILD_OPTIONS if command else _GLOBAL_OPTIONS
        if word in _BUILD_FLAGS and command:
            values[_BUILD_FLAGS[word]] = ""
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
    if values.get("progress", "auto") not in ("auto", "plain", "tty"):
        return None  # typer explains the mistake
    jobs = values.get("jobs", "2")
    if not jobs.isdigit() or int(jobs) < 1:
        return None  # typer explains the mistake
    if "cache_dir" not in values and os.environ.get("SANDBOX_CACHE_DIR"):
        values["cache_dir"] = os.environ["SANDBOX_CACHE_DIR"]
    return values


def _request(options: dict[str, str]) -> BuildRequest:
    from builder.actions.buildrun import BuildRequest

    spec_file, cache_dir = _paths(options)
    return BuildRequest(
        spec_file=spec_file,
        cache_dir=cache_dir,
        as_json="json" in options,
        jobs=int(options.get("jobs", "2")),
        progress=options.get("progress", "auto"),
    )


def _paths(options: dict[str, str]) -> tuple[Path, Path | None]:
    """The spec file and the cache dir the options name (absolute; None: the default), as the
    typer app's callback finds them (without `-f`: `find_spec`)."""
    cache_dir = options.get("cache_dir")
    file = options.get("file")
    return (
        Path(file).absolute() if file else find_spec(Path.cwd()),
        Path(cache_dir).absolute() if cache_dir else None,
    )


_GLOBAL_OPTIONS = {"-f": "file", "--file": "file", "--cache-dir": "cache_dir"}
_BUILD_OPTIONS = {"-j": "jobs", "--jobs": "jobs", "--progress": "progress"}
_BUILD_FLAGS = {"--json": "json"}
