"""Resolving the system closure for another architecture: the script apt runs, run for real.

The engine here runs the resolver's script with /bin/sh on this machine, with stand-ins for
apt-get and apt-cache on PATH that answer as apt of the configured architecture would (they
read the APT_CONFIG the script writes), so what is checked is what the script makes apt see.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.resolve import apt
from builder.resolve.apt import ForeignArch, resolve_system
from tests.unit.fake_engine import FakeEngine, shell_step

# apt-cache: `show name=version...` prints a stanza per pin, its SHA256 naming the arch the
# config asks for; apt-get: `update` does nothing, `install -s` installs each requested
# package (and libjq1 for jq) unless the status file marks it installed.
_APT_CACHE = """#!/bin/sh
arch=$(sed -n 's/^APT::Architecture "\\(.*\\)";$/\\1/p' "${APT_CONFIG:-/dev/null}")
arch=${arch:-amd64}
[ "$1" = show ] || exit 2
shift
for pin in "$@"; do
  printf 'Package: %s\\nVersion: %s\\nArchitecture: %s\\nSHA256: %s-%s\\n\\n' \\
    "${pin%%=*}" "${pin#*=}" "$arch" "${pin%%=*}" "$arch"
done
"""
_APT_GET = """#!/bin/sh
status=$(sed -n 's/^Dir::State::status "\\(.*\\)";$/\\1/p' "${APT_CONFIG:-/dev/null}")
for arg in "$@"; do
  case "$arg" in
    update) exit 0 ;;
    -*|install) ;;
    *) name=${arg%%=*}
       if [ -n "$status" ] && grep -q "^Package: $name$" "$status" \\
          && grep -A1 "^Package: $name$" "$status" | grep -q '^Status: install ok installed'
       then continue; fi
       echo "Inst $name (1.0 Debian:12/stable [x])"
       [ "$name" = jq ] && echo "Inst libjq1 (1.0 Debian:12/stable [x])" ;;
  esac
done
"""


@pytest.fixture
def shell_engine(tmp_path: Path) -> FakeEngine:
    """Runs each script here with /bin/sh; the foreign apt state goes under tmp_path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("apt-get", _APT_GET), ("apt-cache", _APT_CACHE)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    here = str(tmp_path / "foreign")
    step = shell_step(bin_dir, rewrite=lambda script: script.replace(apt._FOREIGN, here))
    return FakeEngine(root=tmp_path / "engine", step=step)


def _resolve(engine: FakeEngine, tmp_path: Path, foreign: ForeignArch | None) -> list[str]:
    packages = resolve_system(
        ["jq", "tzdata"],
        keep={},
        engine=engine,
        image="host-base",
        log_dir=tmp_path,
        foreign=foreign,
    )
    return [f"{p['name']} {p['sha256']}" for p in packages]


def test_the_host_architecture_resolves_as_before(shell_engine: FakeEngine, tmp_path: Path) -> None:
    found = _resolve(shell_engine, tmp_path, None)
    assert found == ["jq jq-amd64", "libjq1 libjq1-amd64", "tzdata tzdata-amd64"]
    assert all("APT_CONFIG" not in run.script for run in shell_engine.runs)


def test_another_architecture_takes_its_own_hashes_and_its_base_as_installed(
    shell_engine: FakeEngine, tmp_path: Path
) -> None:
    base = [{"name": "tzdata", "version": "2025b", "sha256": "x"}]
    found = _resolve(shell_engine, tmp_path, ForeignArch(arch="arm64", installed=base))
    # tzdata is in the arm64 base, so apt does not install it again; hashes are arm64's
    assert found == ["jq jq-arm64", "libjq1 libjq1-arm64"]
    status = (tmp_path / "foreign" / "status").read_text()
    assert "Package: tzdata\nStatus: install ok installed\nVersion: 2025b\nArchitecture: arm64" in (
        status
    )
    assert (tmp_path / "apt-resolve-arm64.log").exists(), "the host's log is kept apart"
