"""`sandbox sbom` and `check`: what the image holds, and whether it meets the baseline."""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from builder.actions.buildrun import cache_lock as _cache_lock
from builder.cli.options import (
    PlatformOption,
    engine_factory,
    json_flag,
    listed_platform,
    options,
)


class SbomFormat(StrEnum):
    spdx = "spdx"
    cyclonedx = "cyclonedx"


def sbom(
    fmt: Annotated[
        SbomFormat,
        typer.Option("--format", help="spdx: SPDX 2.3 JSON; cyclonedx: CycloneDX 1.5 JSON."),
    ] = SbomFormat.spdx,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", metavar="PATH", help="Write it to PATH, not stdout."),
    ] = None,
    platform: PlatformOption = None,
) -> None:
    """Print the bill of materials of the image sandbox.lock describes (no Docker needed).

    Every pinned package of every layer: apt packages, runtimes, pip and npm tools' full
    closures, binary tools, deps lockfiles, each with version, purl, checksum and the node
    (and key) of its layer. Same lock, same bytes. `sandbox build` also writes the SPDX one
    to cache/sbom.spdx.json and labels the image dev.sandbox-builder.sbom with its digest.
    Example: `sandbox sbom --format cyclonedx -o bom.cdx.json`.
    """
    from builder.actions.build import fresh_lock
    from builder.sbom import make_sbom, render, write_sbom

    spec = options.spec()
    chosen = listed_platform(spec, platform)
    lock_ = fresh_lock(spec)
    data = render(make_sbom(lock_, image=spec.image.name, platform=chosen, fmt=fmt.value))
    if output is None:
        typer.echo(data.decode(), nl=False)
        return
    write_sbom(data, output.absolute())
    typer.echo(f"wrote {output} ({fmt.value})", err=True)


def check(
    as_json: Annotated[
        bool, json_flag("Print a JSON list of {check, ok, detail} on stdout.")
    ] = False,
    image: Annotated[
        str | None,
        typer.Option(
            "--image", metavar="REF", help="Check this image [default: the last build's]."
        ),
    ] = None,
    uid: Annotated[
        str | None,
        typer.Option(
            "--uid",
            metavar="UID[:GID]",
            help="The uid Risoluto runs as (0 as root, 1000:1000 in its own image) "
            "[default: an arbitrary 12345].",
        ),
    ] = None,
    shells: Annotated[
        list[str] | None,
        typer.Option(
            "--shell",
            metavar="SHELL",
            help="Also probe in this login shell (`SHELL -lc`), e.g. zsh; repeatable.",
        ),
    ] = None,
) -> None:
    """Prove the built image runs as the orchestrator runs it and meets the security baseline.

    Runs the image as Risoluto would spawn an agent from the overlay (its uid, HOME on a
    fresh volume, --cap-drop=ALL, no-new-privileges, and for an egress allowlist NET_ADMIN
    and its entrypoint's iptables rules), through the image's ENTRYPOINT in `bash -lc` with
    umask 077, then bash, base64, git, each runtime and tool (a program `sh -c` finds but the
    login shell does not fails); and
    checks: non-root user, no exposed port, no setuid file but [image].allow_setuid, no host
    CA certificate, .netrc or credential in any layer. Exits 5 when a check fails.
    """
    from builder.actions.build import fresh_lock
    from builder.check.baseline import check_project
    from builder.check.report import render_table
    from builder.check.shells import LOGIN_SHELLS
    from builder.check.spawn import parse_uid
    from builder.core.errors import CheckError
    from builder.core.platforms import host_platform

    user = parse_uid(uid) if uid is not None else None
    for shell in shells or []:
        if shell not in LOGIN_SHELLS:
            msg = f"--shell {shell!r}: one of {', '.join(LOGIN_SHELLS)} (the probes are sh)"
            raise typer.BadParameter(msg)
    spec = options.spec()
    lock_ = fresh_lock(spec)
    cache = options.cache()
    with _cache_lock(cache, "sandbox command"):
        report = check_project(
            spec=spec,
            nodes=lock_.nodes(host_platform()),
            cache=cache,
            engine=engine_factory()(),
            image=image,
            environ=os.environ,
            user=user,
            shells=tuple(shells or ()),
        )
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in report.results], indent=2))
    else:
        typer.echo(f"image {report.image}")
        typer.echo(render_table(report.results), nl=False)
    for result in report.results:
        if result.warning:
            typer.echo(
                f"warning: {result.check}: {result.detail.removeprefix('warning: ')}", err=True
            )
    if report.failed:
        names = ", ".join(r.check for r in report.failed)
        msg = (
            f"{len(report.failed)} of {len(report.results)} checks failed in {report.image}: "
            f"{names}. Each line above says why; fix sandbox.toml or the build and rebuild"
        )
        raise CheckError(msg)
    typer.echo(f"all {len(report.results)} checks passed ({report.seconds:.1f}s)", err=True)
