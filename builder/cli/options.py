"""What every command shares: the global options, `--platform`, and the engine it talks to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from builder.core.errors import SpecError
from builder.core.layout import default_cache_dir
from builder.engine.choice import EngineFactory
from builder.engine.interface import Engine
from builder.model.spec import Spec
from builder.model.specfile import load_spec
from builder.store.cache import Cache


@dataclass
class Options:
    spec_file: Path
    cache_dir: Path | None
    verbose: bool
    spec_given: bool = False  # -f named spec_file; else find_spec found it (or it is missing)

    def spec(self) -> Spec:
        return load_spec(self.spec_file)

    def cache(self) -> Cache:
        cache = Cache(self.cache_dir or default_cache_dir(self.spec_file))
        cache.ensure()
        return cache


options = Options(spec_file=Path("sandbox.toml"), cache_dir=None, verbose=False)


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
