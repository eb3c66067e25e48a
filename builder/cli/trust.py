"""`sandbox verify`: is an image the lock's? Rebuilt from nothing and compared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from builder.cli.options import JobsOption, engine_factory, json_flag, options

if TYPE_CHECKING:
    from builder.model.lockfile import Lock
    from builder.model.spec import Spec


def verify(
    ref: Annotated[
        str | None,
        typer.Argument(
            metavar="REF",
            help="host/name:tag, host/name@sha256:..., or a local image "
            "[default: what cache/overlay.json pins].",
        ),
    ] = None,
    as_json: Annotated[bool, json_flag("Print one JSON object on stdout (for CI).")] = False,
    jobs: JobsOption = 2,
    attestations: Annotated[
        bool,
        typer.Option(
            "--attestations",
            help="Instead, fetch REF's provenance and SBOM attestations and check them "
            "against the lock (no rebuild).",
        ),
    ] = False,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            metavar="PUB.pem",
            help="With --attestations: the public key every attestation must be signed with.",
        ),
    ] = None,
) -> None:
    """Rebuild the lock's image in an empty cache and store (pulling nothing of ours) and
    compare it with REF. Exit 0 when the image IDs agree; exit 10 naming the first node whose
    layer differs and each file that differs in it."""
    from builder.actions.build import fresh_lock
    from builder.actions.verify import default_ref, verify_image
    from builder.core.errors import VerifyError
    from builder.core.layout import OVERLAY_FILE
    from builder.core.progress import Progress

    spec = options.spec()
    lock_ = fresh_lock(spec)
    chosen = ref or default_ref(options.cache_dir / OVERLAY_FILE)
    if attestations:
        _attestations(spec, lock_, chosen, key=key, as_json=as_json)
        return
    if key is not None:
        msg = "--key checks signatures of attestations: add --attestations"
        raise typer.BadParameter(msg)
    result = verify_image(
        spec=spec,
        lock=lock_,
        ref=chosen,
        engine=engine_factory(),
        progress=Progress(),
        jobs=jobs,
    )
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        typer.echo(result.text())
    if not result.same:
        where = f" in {result.layer.node}" if result.layer else ""
        msg = (
            f"{chosen} is not the image sandbox.lock builds: it differs{where} (see above). "
            "Rebuild and publish it from this lock, or find out who changed it"
        )
        raise VerifyError(msg)


def _attestations(spec: Spec, lock_: Lock, ref: str, *, key: Path | None, as_json: bool) -> None:
    from builder.actions.attest import check_attestations
    from builder.core.errors import VerifyError
    from builder.core.platforms import host_platform
    from builder.publish.signing import public_key
    from builder.resolve.base import has_registry
    from builder.sbom import spdx_document

    if not has_registry(ref):
        msg = f"{ref} is not in a registry: attestations are attached to pushed images only"
        raise VerifyError(msg)
    platform = host_platform()
    report = check_attestations(
        lock=lock_,
        ref=ref,
        platform=platform,
        sbom=spdx_document(lock_, image=spec.image.name, platform=platform),
        key=public_key(key.absolute()) if key else None,
    )
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        typer.echo(report.text())
    if not report.ok:
        msg = f"the attestations of {ref} do not hold: {'; '.join(report.problems)}"
        raise VerifyError(msg)
