"""`sandbox verify`: is an image the lock's? Rebuilt from nothing and compared."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from builder.cli.options import engine_factory, options


def verify(
    ref: Annotated[
        str | None,
        typer.Argument(
            metavar="REF",
            help="host/name:tag, host/name@sha256:..., or a local image "
            "\\[default: what cache/overlay.json pins].",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout (for CI).")
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Nodes built at once.")] = 2,
) -> None:
    """Rebuild the lock's image in an empty cache and store (pulling nothing of ours) and
    compare it with REF. Exit 0 when the image IDs agree; exit 10 naming the first node whose
    layer differs and each file that differs in it."""
    from builder.actions.build import fresh_lock
    from builder.actions.verify import default_ref, verify_image
    from builder.core.errors import VerifyError
    from builder.core.layout import OVERLAY_FILE, default_cache_dir
    from builder.core.progress import Progress

    spec = options.spec()
    lock_ = fresh_lock(spec)
    cache_dir = options.cache_dir or default_cache_dir(spec.path)
    chosen = ref or default_ref(cache_dir / OVERLAY_FILE)
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
