"""The standard `org.opencontainers.image.*` annotations registries, scanners and UIs read.

Two places carry them, for two reasons:
- the image config's labels (`config_labels`): `created`, `title`, `version`, and for an image
  base `base.name` and `base.digest`. Everything in the config is part of the image ID, which
  must stay a function of the lock alone (same lock, same image on any machine, at any
  commit), so these come from the spec and the lock only: `created` is the lock's
  source_date_epoch, `version` the first 12 hex digits of the lock's node keys digest (the
  `dev.sandbox-builder.lock` label: it changes exactly when the image's contents do).
- the pushed manifest's annotations (`manifest_annotations`): the same, plus `source` and
  `revision` from git (`builder/core/gitrepo.py`). A manifest's annotations are not part of the
  image ID, so the commit a lock was built from can be named there without two checkouts of one
  lock building two images. The manifest digest does depend on them: one lock pushed from two
  commits gives two manifests of one image.

A bootstrap base is not an image, so it has no `base.name` or `base.digest`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from builder.core.gitrepo import GitOrigin
from builder.model.inputs import BaseInputs, ImageBase

PREFIX = "org.opencontainers.image."


def config_labels(*, title: str, lock_digest: str, epoch: int, base: BaseInputs) -> dict[str, str]:
    """The standard labels of the image config; `lock_digest` is the `sha256:` digest of the
    lock's node keys, `base` the lock's base node."""
    labels = {
        f"{PREFIX}created": datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        f"{PREFIX}title": title,
        f"{PREFIX}version": lock_digest.removeprefix("sha256:")[:12],
    }
    if isinstance(base, ImageBase):
        labels[f"{PREFIX}base.name"] = base.image
        labels[f"{PREFIX}base.digest"] = base_digest(base.pinned)
    return labels


def base_digest(pinned: str) -> str:
    """The digest of a base's pin: `repo@sha256:...` names its manifest, a bare `sha256:...`
    (a local-only image) its image ID."""
    return pinned.rpartition("@")[2]


def manifest_annotations(labels: Mapping[str, str], origin: GitOrigin | None) -> dict[str, str]:
    """The annotations of a pushed manifest: the config's standard labels, and where the
    spec's repository is and which commit it was at."""
    found = {k: v for k, v in sorted(labels.items()) if k.startswith(PREFIX)}
    if origin is not None:
        found[f"{PREFIX}revision"] = origin.revision
        if origin.source:
            found[f"{PREFIX}source"] = origin.source
    return dict(sorted(found.items()))
