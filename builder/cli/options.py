"""Every option more than one command takes, declared once, and what the commands share.

A command's signature names these aliases (`jobs: JobsOption = 2`), so a flag is spelled,
typed and explained in one place, as pdm's `cli/options.py` does. `--json` and `--dry-run`
mean the same everywhere but print what each command prints, so each command says that in
its own words through `json_flag` / `dry_run_flag`. Options only one command has stay in it.
The global ones (`-f`, `--cache-dir`, `-v`) are parsed by the app's callback into `options`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from builder.core.errors import SpecError
from builder.engine.choice import EngineFactory
from builder.engine.interface import Engine
from builder.model.spec import Spec
from builder.model.specfile import load_spec
from builder.orchestrator.risoluto import TOKEN_ENV
from builder.store.cache import Cache


@dataclass
class Options:
    """The global options of this run, as the app's callback read them."""

    spec_file: Path
    cache_dir: Path  # where --cache-dir, SANDBOX_CACHE_DIR or the spec's folder put it
    verbose: bool
    spec_given: bool = False  # -f named spec_file; else find_spec found it (or it is missing)

    def spec(self) -> Spec:
        return load_spec(self.spec_file)

    def cache(self) -> Cache:
        """The cache dir, created if missing."""
        cache = Cache(self.cache_dir)
        cache.ensure()
        return cache


options = Options(spec_file=Path("sandbox.toml"), cache_dir=Path("cache"), verbose=False)


FileOption = Annotated[
    Path | None,
    typer.Option(
        "-f",
        "--file",
        help="The spec to work on [default: the first sandbox.toml in this folder or a "
        "parent, up to the repository root].",
    ),
]
CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar="SANDBOX_CACHE_DIR",
        help="Where layers and build state live [default: cache/ beside sandbox.toml].",
    ),
]
VerboseOption = Annotated[
    bool, typer.Option("-v", "--verbose", help="Echo commands; tracebacks on errors.")
]


def json_flag(text: str) -> Any:  # typer.Option's OptionInfo, which typer types Any
    """`--json` (JSON on stdout instead of text); `text` says what this command's JSON is."""
    return typer.Option("--json", help=text)


def dry_run_flag(text: str) -> Any:
    """`--dry-run` (change nothing); `text` says what this command shows instead."""
    return typer.Option("--dry-run", help=text)


JsonOption = Annotated[bool, json_flag("Print one JSON object on stdout (DESIGN.md §12).")]
JobsOption = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Nodes built at once.")]
ApplyOption = Annotated[
    str | None,
    typer.Option(
        "--apply",
        metavar="URL",
        help=f"Then PUT the overlay to Risoluto at URL and confirm it (token: ${TOKEN_ENV}).",
    ),
]


def _check_platform(value: str | None) -> str | None:
    from builder.core.patterns import platform

    problem = platform(value) if value is not None else None
    if problem:
        msg = f"{value!r} {problem}"
        raise typer.BadParameter(msg)
    return value


PlatformOption = Annotated[
    str | None,
    typer.Option(
        "--platform",
        metavar="OS/ARCH",
        callback=_check_platform,
        help="Which platform of the lock (linux/amd64, linux/arm64) [default: this machine's].",
    ),
]


class ProgressMode(StrEnum):
    auto = "auto"
    plain = "plain"
    tty = "tty"


ProgressOption = Annotated[
    ProgressMode,
    typer.Option(
        "--progress",
        help="How nodes are shown on stderr: a live table on a terminal (auto), plain lines "
        "(plain, as in a pipe or CI log), or the table anyway (tty). NO_COLOR is honoured.",
    ),
]


def listed_platform(spec: Spec, platform: str | None) -> str:
    """`platform` (else this machine's), refused unless [image].platforms lists it."""
    from builder.core.platforms import host_platform

    chosen = platform or host_platform()
    if platform is not None and chosen not in spec.image.platforms:
        msg = (
            f"{spec.path}: [image].platforms does not list {chosen}; add it and run `sandbox lock`"
        )
        raise SpecError(msg)
    return chosen


def engine_factory() -> Callable[[], Engine]:
    """The engine the commands talk to, connected on first use (tests put a fake here)."""
    return EngineFactory()
