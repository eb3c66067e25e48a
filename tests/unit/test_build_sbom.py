"""`sandbox build` writes the SBOM once per change of what it is made of."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from builder import sbom
from builder.actions.platformimage import write_sbom
from builder.core.layout import SBOM_FILE
from builder.store.cache import Cache
from tests.unit.test_sbom import make_lock

PLATFORM = "linux/amd64"


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    cache = Cache(tmp_path / "cache", downloads=tmp_path / "dl", store=tmp_path / "store")
    cache.ensure()
    return cache


def _digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_sbom_is_written_and_its_digest_returned(cache: Cache) -> None:
    digest = write_sbom(make_lock(), image="acme/img", platform=PLATFORM, cache=cache)
    path = cache.root / SBOM_FILE
    assert digest == _digest(path)
    expected = sbom.render(sbom.spdx_document(make_lock(), image="acme/img", platform=PLATFORM))
    assert path.read_bytes() == expected


def test_an_unchanged_sbom_is_not_made_again(cache: Cache, monkeypatch: pytest.MonkeyPatch) -> None:
    first = write_sbom(make_lock(), image="acme/img", platform=PLATFORM, cache=cache)

    def refuse(*_: object, **__: object) -> None:
        msg = "the SBOM was made again"
        raise AssertionError(msg)

    monkeypatch.setattr(sbom, "spdx_document", refuse)
    assert write_sbom(make_lock(), image="acme/img", platform=PLATFORM, cache=cache) == first


def test_another_image_name_or_an_edited_file_makes_it_again(cache: Cache) -> None:
    first = write_sbom(make_lock(), image="acme/img", platform=PLATFORM, cache=cache)
    other = write_sbom(make_lock(), image="acme/other", platform=PLATFORM, cache=cache)
    assert other != first
    path = cache.root / SBOM_FILE
    path.write_bytes(b"{}\n")  # edited by hand: the stamp's digest no longer matches
    again = write_sbom(make_lock(), image="acme/other", platform=PLATFORM, cache=cache)
    assert again == other == _digest(path)
