"""Pure parts of locking: Debian versions of apt runtimes, and which npm pins an update drops."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import ResolutionError
from builder.locking import _check_apt_runtimes, _npm_path_of, upstream_version
from builder.spec import BaseSpec, ImageSpec, RuntimeSpec, Spec


@pytest.mark.parametrize(
    ("debian", "upstream"),
    [
        ("3.11.2-1+b1", "3.11.2"),
        ("2:1.19~1", "1.19"),
        ("18.19.0+dfsg-6~deb12u2", "18.19.0"),
        ("1.63.0+dfsg1-2", "1.63.0"),
    ],
)
def test_upstream_version_drops_epoch_and_debian_suffixes(debian: str, upstream: str) -> None:
    assert upstream_version(debian) == upstream


def _spec(*runtimes: RuntimeSpec) -> Spec:
    return Spec(
        path=Path("/p/sandbox.toml"),
        image=ImageSpec(name="t/t"),
        base=BaseSpec(image="debian:bookworm"),
        runtimes=runtimes,
    )


def test_apt_runtime_matching_its_request_passes() -> None:
    spec = _spec(
        RuntimeSpec(name="python", version="3.11", provider="apt"),
        RuntimeSpec(name="java", version="17", provider="apt"),
    )
    packages = [
        {"name": "python3", "version": "3.11.2-1+b1"},
        {"name": "default-jdk-headless", "version": "2:1.17-74"},
    ]
    _check_apt_runtimes(spec, packages)


def test_apt_runtime_of_another_version_says_what_apt_has() -> None:
    spec = _spec(RuntimeSpec(name="python", version="3.12", provider="apt"))
    with pytest.raises(ResolutionError) as caught:
        _check_apt_runtimes(spec, [{"name": "python3", "version": "3.11.2-1+b1"}])
    message = str(caught.value)
    assert "[runtimes].python" in message
    assert "3.11.2-1+b1" in message
    assert "version = '3.11'" in message
    assert 'provider = "official"' in message
    assert caught.value.exit_code == 4


def test_prefix_of_a_version_is_not_a_match() -> None:
    spec = _spec(RuntimeSpec(name="python", version="3.1", provider="apt"))
    with pytest.raises(ResolutionError):
        _check_apt_runtimes(spec, [{"name": "python3", "version": "3.11.2-1+b1"}])


@pytest.mark.parametrize(
    ("path", "dropped"),
    [
        ("node_modules/typescript", True),
        ("node_modules/@openai/codex/node_modules/typescript", True),
        ("node_modules/typescript-eslint", False),
        ("node_modules/@types/typescript", False),
    ],
)
def test_update_drops_exactly_the_named_packages_pins(path: str, dropped: bool) -> None:
    assert _npm_path_of(path, ["typescript"]) is dropped
