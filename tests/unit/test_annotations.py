"""The standard `org.opencontainers.image.*` annotations (builder/image/annotations.py): what
the image config's labels carry (from the lock alone, so the image ID stays the lock's) and
what a pushed manifest adds (the repository and commit, from git)."""

from __future__ import annotations

from builder.core.gitrepo import GitOrigin
from builder.image.annotations import config_labels, manifest_annotations
from builder.model.inputs import BootstrapBase, BootstrapPin, ImageBase

P = "org.opencontainers.image."
LOCK_DIGEST = "sha256:" + "ab12" * 16
IMAGE_BASE = ImageBase(
    image="debian:bookworm-slim", pinned=f"docker.io/library/debian@sha256:{'1' * 64}"
)


def test_the_config_names_when_what_which_lock_and_the_base() -> None:
    labels = config_labels(
        title="acme/sandbox", lock_digest=LOCK_DIGEST, epoch=1700000000, base=IMAGE_BASE
    )

    assert labels == {
        f"{P}created": "2023-11-14T22:13:20Z",
        f"{P}title": "acme/sandbox",
        f"{P}version": "ab12ab12ab12",
        f"{P}base.name": "debian:bookworm-slim",
        f"{P}base.digest": f"sha256:{'1' * 64}",
    }


def test_a_local_base_is_named_by_its_image_id() -> None:
    local = ImageBase(image="risoluto-codex:latest", pinned=f"sha256:{'2' * 64}")

    labels = config_labels(title="t", lock_digest=LOCK_DIGEST, epoch=0, base=local)

    assert labels[f"{P}base.name"] == "risoluto-codex:latest"
    assert labels[f"{P}base.digest"] == f"sha256:{'2' * 64}"
    assert labels[f"{P}created"] == "1970-01-01T00:00:00Z"


def test_a_bootstrapped_base_is_no_image_to_name() -> None:
    boot = BootstrapBase(
        bootstrap=BootstrapPin(
            suite="bookworm", mirror="http://deb.debian.org/debian", variant="minbase"
        ),
        packages=(),
    )

    labels = config_labels(title="t", lock_digest=LOCK_DIGEST, epoch=0, base=boot)

    assert sorted(labels) == [f"{P}created", f"{P}title", f"{P}version"]


def test_the_manifest_adds_the_source_and_revision_to_the_standard_labels_only() -> None:
    labels = {
        **config_labels(title="t", lock_digest=LOCK_DIGEST, epoch=0, base=IMAGE_BASE),
        "dev.sandbox-builder.lock": LOCK_DIGEST,
        "org.example.team": "infra",
    }
    origin = GitOrigin(revision="c" * 40, source="https://git.example.com/acme/sandbox")

    notes = manifest_annotations(labels, origin)

    assert notes == {
        **config_labels(title="t", lock_digest=LOCK_DIGEST, epoch=0, base=IMAGE_BASE),
        f"{P}revision": "c" * 40,
        f"{P}source": "https://git.example.com/acme/sandbox",
    }
    assert list(notes) == sorted(notes)


def test_outside_git_the_manifest_says_what_the_config_says() -> None:
    labels = config_labels(title="t", lock_digest=LOCK_DIGEST, epoch=0, base=IMAGE_BASE)

    assert manifest_annotations(labels, None) == labels
    no_remote = manifest_annotations(labels, GitOrigin(revision="d" * 40, source=None))
    assert no_remote == {**labels, f"{P}revision": "d" * 40}
