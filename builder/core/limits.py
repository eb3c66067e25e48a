"""How long a step that reaches the network may wait: the bounds every such step gets.

A mirror or registry that accepts a connection and never answers would otherwise hold a
build forever (GNU wget, which debootstrap drives, waits 900 s per read and tries 20 times;
apt and npm wait minutes per file). Two settings, both in seconds:

- `SANDBOX_NET_TIMEOUT` (default 30): how long one connection may wait for an answer before
  it counts as failed. Each tool gets it in its own terms: apt's `Acquire::*::Timeout`,
  wget's `timeout` (through a WGETRC), pip's `--timeout`, npm's and pnpm's `fetch-timeout`,
  uv's `UV_HTTP_TIMEOUT`, and the tool's own downloads, registry and Risoluto requests.
  Each tool retries a failed request a few times (`RETRIES`).
- `SANDBOX_STEP_TIMEOUT` (default 1800): how long one step (a build container, debootstrap)
  may run in all, and one download of the tool's own (net/transport.py: a server trickling a
  byte every few seconds never trips a read timeout). Past it the step is stopped and
  fails, naming itself, its log and this setting.

A step that fails with a tool saying a request timed out (pip, npm, pnpm, uv) gets
`network_hint()` after its log's tail, so the setting is named there too.
"""

from __future__ import annotations

import os
from pathlib import Path

from builder.core.errors import SpecError

NET_TIMEOUT_ENV = "SANDBOX_NET_TIMEOUT"
STEP_TIMEOUT_ENV = "SANDBOX_STEP_TIMEOUT"
DEFAULT_NET_TIMEOUT = 30.0
DEFAULT_STEP_TIMEOUT = 1800.0
RETRIES = 2  # further attempts a tool makes after a failed request


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        msg = f"{name}={text!r} is not a number of seconds above 0. Set it to e.g. {default:g}"
        raise SpecError(msg)
    return value


def net_timeout() -> float:
    """Seconds one connection may wait for an answer."""
    return _seconds(NET_TIMEOUT_ENV, DEFAULT_NET_TIMEOUT)


def step_timeout() -> float:
    """Seconds one step may run in all."""
    return _seconds(STEP_TIMEOUT_ENV, DEFAULT_STEP_TIMEOUT)


def apt_options() -> str:
    """apt-get options bounding each download (shell words)."""
    seconds = max(1, round(net_timeout()))
    return (
        f"-o Acquire::http::Timeout={seconds} -o Acquire::https::Timeout={seconds} "
        f"-o Acquire::ftp::Timeout={seconds} -o Acquire::Retries={RETRIES}"
    )


def tool_env() -> dict[str, str]:
    """Variables bounding pip's, npm's, pnpm's and uv's requests inside a build step."""
    seconds = max(1, round(net_timeout()))
    millis = str(seconds * 1000)
    return {
        "PIP_TIMEOUT": str(seconds),
        "PIP_RETRIES": str(RETRIES),
        "npm_config_fetch_timeout": millis,
        "npm_config_fetch_retries": str(RETRIES),
        "npm_config_fetch_retry_mintimeout": "1000",
        "npm_config_fetch_retry_maxtimeout": "4000",
        "pnpm_config_fetch_timeout": millis,
        "pnpm_config_fetch_retries": str(RETRIES),
        "UV_HTTP_TIMEOUT": str(seconds),
    }


def write_wgetrc(folder: Path) -> Path:
    """A wgetrc bounding each read and the tries of wget (what debootstrap downloads with)."""
    path = folder / "wgetrc"
    seconds = max(1, round(net_timeout()))
    path.write_text(f"timeout = {seconds}\ntries = {RETRIES + 1}\nwaitretry = 1\n")
    return path


def network_hint() -> str:
    """What to say when a network tool gave up."""
    return (
        f"Each request waited up to {net_timeout():g}s for an answer and was tried "
        f"{RETRIES + 1} times ({NET_TIMEOUT_ENV}): check the network, a proxy and the mirror"
    )


def stalled(what: str, *, seconds: float, log: Path | None) -> str:
    """The message of a step stopped at the step limit."""
    where = f" Its log: {log}." if log is not None else ""
    return (
        f"{what} was stopped after {seconds:.0f}s without finishing (the step limit, "
        f"{STEP_TIMEOUT_ENV}={seconds:g}).{where} A mirror or registry that accepts "
        f"connections but never answers does this: check the network and the mirror, or "
        f"raise {STEP_TIMEOUT_ENV} if the step is just slow"
    )
