"""The wheels of a pip tool's closure: which the lock lets the host install, and fetching them.

The lock pins each package of a tool's closure by version and sha256, and (locks made since
host assembly) by the url of the very file pip chose. The host installs it only if that file
is a wheel: an sdist needs its build backend run (code, in the image's python), so the tool
is made by pip in a container. A wheel is downloaded once per machine into the download
cache's `wheels/` folder, named by its sha256 and checked against it (net/downloads.py:
retries, credentials, deadline); a file that does not match the lock is an error, never
installed.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from builder.model.toolinputs import WheelPin
from builder.net import downloads

_PARALLEL = 8  # downloads at once


@dataclass(frozen=True, kw_only=True)
class Wheel:
    """One locked wheel: its pin and its file name (what `installer` reads name and tags from)."""

    pin: WheelPin
    filename: str


def wheel_name(pin: WheelPin) -> str:
    """The file name of the pin's url (percent-escapes undone), "" without a url."""
    if not pin.url:
        return ""
    return posixpath.basename(unquote(urlsplit(pin.url).path))


def refusal(tool: str, packages: Sequence[WheelPin]) -> str | None:
    """Why the lock alone says tool `tool`'s closure cannot be installed on the host (its
    first package without a url and sha256, or not a wheel), or None."""
    for pin in packages:
        name = wheel_name(pin)
        if not name or not pin.sha256:
            return (
                f"{pin.name} {pin.version} has no wheel url in the lock (run `sandbox lock "
                f"--update {tool}` to record it)"
            )
        if not name.endswith(".whl"):
            return f"{pin.name} {pin.version} is an sdist ({name}): pip builds it"
    return None


def wheels_of(packages: Sequence[WheelPin]) -> list[Wheel]:
    """The closure as wheels, sorted by package name (callers check `refusal` first)."""
    found = [Wheel(pin=pin, filename=wheel_name(pin)) for pin in packages]
    return sorted(found, key=lambda w: w.pin.name)


def fetch_all(wheels: Sequence[Wheel], folder: Path) -> list[Path]:
    """Each wheel's checked file in `folder` (named by its sha256), fetched in parallel when
    missing; in the order of `wheels`."""

    def one(wheel: Wheel) -> Path:
        url = wheel.pin.url or ""
        return downloads.fetch(url, sha256=wheel.pin.sha256, dest_dir=folder, what="tools.pip")

    with ThreadPoolExecutor(max_workers=_PARALLEL) as pool:
        return list(pool.map(one, wheels))
