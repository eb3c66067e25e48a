"""Locking (builder/lock/locking.py): Debian versions of apt runtimes, which npm pins an update
drops, and `sandbox lock [--update NAME]` itself on the recording FakeEngine."""

from __future__ import annotations

import io
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from builder.cli import options as cli_options
from builder.core.errors import ResolutionError
from builder.core.platforms import host_platform
from builder.kinds.rules import check_apt_runtimes, npm_path_of, upstream_version
from builder.model.spec import BaseSpec, ImageSpec, Provider, RuntimeSpec, Spec
from builder.store.cache import Cache
from tests.unit.clirun import sandbox
from tests.unit.fake_engine import FakeEngine, Run, shell_step
from tests.unit.test_base_image import DEBIAN
from tests.unit.test_execute import put_base


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
        RuntimeSpec(name="python", version="3.11", provider=Provider.APT),
        RuntimeSpec(name="java", version="17", provider=Provider.APT),
    )
    packages = [
        {"name": "python3", "version": "3.11.2-1+b1"},
        {"name": "default-jdk-headless", "version": "2:1.17-74"},
    ]
    check_apt_runtimes(spec, packages)


def test_apt_runtime_of_another_version_says_what_apt_has() -> None:
    spec = _spec(RuntimeSpec(name="python", version="3.12", provider=Provider.APT))
    with pytest.raises(ResolutionError) as caught:
        check_apt_runtimes(spec, [{"name": "python3", "version": "3.11.2-1+b1"}])
    message = str(caught.value)
    assert "[runtimes].python" in message
    assert "3.11.2-1+b1" in message
    assert "version = '3.11'" in message
    assert 'provider = "official"' in message
    assert caught.value.exit_code == 4


def test_prefix_of_a_version_is_not_a_match() -> None:
    spec = _spec(RuntimeSpec(name="python", version="3.1", provider=Provider.APT))
    with pytest.raises(ResolutionError):
        check_apt_runtimes(spec, [{"name": "python3", "version": "3.11.2-1+b1"}])


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
    assert npm_path_of(path, ["typescript"]) is dropped


# -- `sandbox lock` on the recording FakeEngine --------------------------------------------

# apt as the resolver's script runs it: `install -s` installs each NAME=VERSION as asked and
# each bare NAME at the mirror's current version (the file MIRROR); `apt-cache show` gives a
# stanza per pin, its SHA256 naming the pin.
_APT_GET = """#!/bin/sh
case " $* " in *" update "*) exit 0 ;; esac
for arg in "$@"; do
  case "$arg" in
    -*|install|Acquire::*) ;;
    *=*) echo "Inst ${arg%%=*} (${arg#*=} Debian:12/stable [amd64])" ;;
    *) echo "Inst $arg ($(cat MIRROR) Debian:12/stable [amd64])" ;;
  esac
done
"""
_APT_CACHE = """#!/bin/sh
shift
for pin in "$@"; do
  printf 'Package: %s\\nVersion: %s\\nSHA256: %s\\n\\n' "${pin%%=*}" "${pin#*=}" "$pin"
done
"""


@dataclass
class Project:
    spec: Path
    engine: FakeEngine
    mirror: Path

    def lock(self, *args: str) -> dict[str, Any]:
        done = sandbox("-f", self.spec, "--cache-dir", self.spec.parent / "cache", "lock", *args)
        assert done.exit_code == 0, done.stderr
        return tomllib.loads(self.spec.with_name("sandbox.lock").read_text())


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A spec on an image base whose base is built in the cache, and apt's mirror at 1.0."""
    for var, folder in (("SANDBOX_STORE_DIR", "store"), ("SANDBOX_DOWNLOAD_DIR", "dl")):
        monkeypatch.setenv(var, str(tmp_path / folder))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("apt-get", _APT_GET), ("apt-cache", _APT_CACHE)):
        (bin_dir / name).write_text(text.replace("MIRROR", str(tmp_path / "mirror")))
        (bin_dir / name).chmod(0o755)
    apt = shell_step(bin_dir)

    def step(run: Run) -> int:
        if "@@sim" in run.script:  # resolve/apt.py's resolver
            return apt(run)
        run.log.write_text(DEBIAN)  # resolve/image.py's probe of the base
        return 0

    engine = FakeEngine(root=tmp_path / "engine", step=step)
    monkeypatch.setattr(cli_options, "EngineFactory", lambda: lambda: engine)
    spec = tmp_path / "project" / "sandbox.toml"
    spec.parent.mkdir()
    spec.write_text('[image]\nname = "acme/sandbox"\n[base]\nimage = "127.0.0.1:5000/debian:12"\n')
    project = Project(spec=spec, engine=engine, mirror=tmp_path / "mirror")
    project.mirror.write_text("1.0")
    base_key = project.lock()["platforms"][host_platform()]["nodes"]["base"]["key"]
    cache = Cache(spec.parent / "cache")
    put_base(cache, base_key)
    spec.write_text(spec.read_text() + '[system]\npackages = ["jq", "tzdata"]\n')
    return project


def _pins(lock: dict[str, Any]) -> dict[str, str]:
    system = lock["platforms"][host_platform()]["nodes"]["system"]["inputs"]
    return {p["name"]: p["version"] for p in system["packages"]}


def test_update_name_moves_that_package_and_keeps_the_other_pins(project: Project) -> None:
    first = project.lock()
    assert _pins(first) == {"jq": "1.0", "tzdata": "1.0"}
    project.mirror.write_text("2.0")  # the mirror moves on

    again = project.lock()
    runs = len(project.engine.runs)
    updated = project.lock("--update", "jq")

    assert again == first, "a plain lock keeps every pin"
    assert _pins(updated) == {"jq": "2.0", "tzdata": "1.0"}
    [resolver] = project.engine.runs[runs:]
    assert "jq tzdata=1.0" in resolver.script, "apt was told to hold tzdata"
    platform = host_platform()
    assert (
        updated["platforms"][platform]["nodes"]["base"]
        == first["platforms"][platform]["nodes"]["base"]
    )
    assert _pins(project.lock("--update")) == {"jq": "2.0", "tzdata": "2.0"}


def test_locking_twice_gives_the_same_bytes_and_asks_the_engine_nothing(project: Project) -> None:
    project.lock()
    text = project.spec.with_name("sandbox.lock").read_bytes()
    calls = len(project.engine.calls)

    project.lock()

    assert project.spec.with_name("sandbox.lock").read_bytes() == text
    assert project.engine.calls[calls:] == []


def test_lock_says_whether_it_wrote_the_lock_then_what_floats(project: Project) -> None:
    args = ("-f", project.spec, "--cache-dir", project.spec.parent / "cache", "lock")
    lock_file = project.spec.with_name("sandbox.lock")

    first = sandbox(*args)
    again = sandbox(*args)

    for done, state in ((first, "wrote"), (again, "unchanged:")):
        said, warning, note = done.stderr.splitlines()[-3:]
        assert said.startswith(f"{state} {lock_file} (")
        assert warning.startswith("warning: [base].image '127.0.0.1:5000/debian:12' is a moving")
        assert note.startswith("note: the base runs as root")
        assert done.stdout == ""


def test_lock_check_refuses_a_stale_lock_after_saying_what_floats(project: Project) -> None:
    project.lock()
    project.spec.write_text(project.spec.read_text().replace('"tzdata"', '"curl"'))

    done = sandbox("-f", project.spec, "lock", "--check")

    assert done.exit_code == 3
    warning, note, error = done.stderr.splitlines()
    assert warning.startswith("warning: [base].image")
    assert note.startswith("note: ")
    assert error.startswith(f"error: {project.spec.with_name('sandbox.lock')} is stale")


def test_lock_s_apt_step_has_the_build_steps_heartbeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from builder.core.progress import Progress
    from builder.kinds import base, system
    from builder.lock import locking
    from builder.model.specfile import load_spec
    from builder.store.cache import Cache

    (tmp_path / "sandbox.toml").write_text(
        '[image]\nname = "a/b"\nuser = "agent"\n\n[base]\nimage = "debian:bookworm-slim"\n'
        '\n[system]\npackages = ["jq"]\n'
    )
    pinned = {"image": "debian:bookworm-slim", "pinned": "sha256:" + "0" * 64, "epoch": 0}
    monkeypatch.setattr(base, "resolve_base", lambda *_, **__: pinned)
    monkeypatch.setattr(base, "describe_image", lambda **_: {})

    def quiet_apt(request: list[str], *, log_dir: Path, **_: object) -> list[dict[str, str]]:
        (log_dir / "apt-resolve.log").write_text("Reading package lists...\n")
        time.sleep(1.0)  # a mirror that stopped answering
        return [{"name": "jq", "version": "1.6-2.1", "sha256": "0" * 64}]

    monkeypatch.setattr(system, "resolve_system", quiet_apt)
    out = io.StringIO()
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    locking.lock_project(
        spec=load_spec(tmp_path / "sandbox.toml"),
        old=None,
        update=None,
        cache=cache,
        engine=lambda: None,  # type: ignore[arg-type,return-value]
        progress=Progress(out, heartbeat=0.3),
        stage=lambda *_, **__: "sha256:stage",
    )
    beats = [line for line in out.getvalue().splitlines() if line.startswith("  resolving system ")]
    assert any("no output for" in line for line in beats), out.getvalue()
    assert beats[-1].endswith(f"(log: {cache.root / 'logs' / 'apt-resolve.log'})")


def test_system_docs_is_locked_only_when_kept_and_flipping_it_keeps_the_pins(
    project: Project,
) -> None:
    def system(lock: dict[str, Any]) -> dict[str, Any]:
        inputs: dict[str, Any] = lock["platforms"][host_platform()]["nodes"]["system"]["inputs"]
        return inputs

    slim = project.lock()
    project.spec.write_text(project.spec.read_text() + "docs = true\n")
    kept = project.lock()
    project.spec.write_text(project.spec.read_text().replace("docs = true\n", ""))
    again = project.lock()

    assert "docs" not in system(slim)
    assert system(kept)["docs"] is True
    assert system(kept)["packages"] == system(slim)["packages"]
    assert again == slim, "back to the default: the same lock, byte for byte"
    nodes = kept["platforms"][host_platform()]["nodes"]
    assert nodes["system"]["key"] != slim["platforms"][host_platform()]["nodes"]["system"]["key"]


def test_docs_reaches_a_bootstrapped_base_only_when_kept_and_flipping_it_keeps_its_pins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from builder.kinds import base

    monkeypatch.setenv("SANDBOX_STORE_DIR", str(tmp_path / "store"))
    resolved = {
        "epoch": 1700000000,
        "packages": [{"name": "base-files", "version": "12.4", "sha256": "0" * 64}],
        "bootstrap": {"suite": "bookworm", "mirror": "http://m/debian", "variant": "minbase"},
    }
    monkeypatch.setattr(base, "resolve_base", lambda *_, **__: resolved)
    spec = tmp_path / "sandbox.toml"
    spec.write_text('[image]\nname = "a/b"\n\n[base]\nbootstrap = { suite = "bookworm" }\n')

    def lock() -> tuple[dict[str, Any], str]:
        done = sandbox("-f", spec, "--cache-dir", tmp_path / "cache", "lock")
        assert done.exit_code == 0, done.stderr
        text = spec.with_name("sandbox.lock").read_text()
        node: dict[str, Any] = tomllib.loads(text)["platforms"][host_platform()]["nodes"]["base"]
        return node, text

    slim, slim_text = lock()
    spec.write_text(spec.read_text() + "\n[system]\ndocs = true\n")
    kept, _ = lock()
    spec.write_text(spec.read_text().replace("docs = true\n", ""))
    _, again_text = lock()

    assert "docs" not in slim["inputs"]
    assert kept["inputs"]["docs"] is True
    assert kept["inputs"]["packages"] == slim["inputs"]["packages"]
    assert kept["key"] != slim["key"]
    assert again_text == slim_text, "back to the default: the same lock, byte for byte"
