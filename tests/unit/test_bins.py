"""[tools.bin] layers (builder/resolve/bins.py): pinned downloads or project files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from builder.core.errors import BuildError, ResolutionError
from builder.model.fields import Fields
from builder.model.spec import BinaryTool
from builder.model.toolinputs import BinToolInputs
from builder.model.typed import read_inputs
from builder.resolve.bins import bin_archive, layout_bin, resolve_bin
from tests.unit.conftest import Entry, Web, exe, write_tar, write_zip

ELF = b"\x7fELF fake kubectl\n"


def _build(inputs: dict[str, object], tmp: Path, **kw: str) -> tuple[Path, dict[str, str]]:
    """Build from `inputs` as `sandbox lock` writes them (with what was requested)."""
    asked = {"version": "", "url": "", "path": "", "bin": "", "auth_env": ""}
    pinned = read_inputs(BinToolInputs, Fields({**inputs, "requested": asked}, "tools.bin"))
    archive = bin_archive(pinned, project_dir=tmp / "project", downloads=tmp / "dl", **kw)
    prefix = tmp / "prefix"
    return prefix, layout_bin(pinned, archive, prefix)


def _resolve(tool: BinaryTool, tmp: Path, platform: str = "linux/amd64") -> dict[str, object]:
    return resolve_bin(tool, project_dir=tmp / "project", platform=platform, downloads=tmp / "dl")


def test_a_raw_binary_is_pinned_and_put_on_path(web: Web, tmp_path: Path) -> None:
    web.put("release/v1.31.0/bin/linux/arm64/kubectl", ELF)
    url = web.url + "/release/v{version}/bin/linux/{arch}/kubectl"
    inputs = _resolve(
        BinaryTool(name="kubectl", version="1.31.0", url=url), tmp_path, "linux/arm64"
    )
    assert inputs == {
        "name": "kubectl",
        "version": "1.31.0",
        "url": f"{web.url}/release/v1.31.0/bin/linux/arm64/kubectl",
        "sha256": hashlib.sha256(ELF).hexdigest(),
        "format": "raw",
        "bin": "kubectl",
    }
    prefix, env = _build(inputs, tmp_path)
    assert env == {"PATH": "/opt/sandbox/tools/bin/kubectl/bin"}
    assert (prefix / "bin/kubectl").read_bytes() == ELF
    assert (prefix / "bin/kubectl").stat().st_mode & 0o777 == 0o755


def test_an_archive_gets_a_relative_link_to_its_executable(web: Web, tmp_path: Path) -> None:
    write_tar(
        web.root / "helm-v3.16.0-linux-amd64.tar.gz",
        [exe("linux-amd64/helm", ELF), Entry(name="linux-amd64/LICENSE", data=b"Apache")],
    )
    url = web.url + "/helm-v{version}-linux-{arch}.tar.gz"
    inputs = _resolve(BinaryTool(name="helm", version="3.16.0", url=url), tmp_path)
    assert inputs["format"] == "tar.gz"
    prefix, env = _build(inputs, tmp_path)
    assert (prefix / "bin/helm").readlink().as_posix() == "../linux-amd64/helm"
    assert (prefix / "bin/helm").read_bytes() == ELF
    assert env == {"PATH": "/opt/sandbox/tools/bin/helm/bin"}


def test_a_zip_keeps_the_exec_bit_and_bin_names_the_executable(web: Web, tmp_path: Path) -> None:
    write_zip(web.root / "tf_1.9.0_linux_amd64.zip", [exe("terraform", ELF)])
    url = web.url + "/tf_{version}_linux_{arch}.zip"
    tool = BinaryTool(name="tf", version="1.9.0", url=url, binary="terraform")
    prefix, env = _build(_resolve(tool, tmp_path), tmp_path)
    assert os.access(prefix / "bin/terraform", os.X_OK)
    assert env == {"PATH": "/opt/sandbox/tools/bin/tf/bin"}


def test_a_missing_executable_lists_the_candidates(web: Web, tmp_path: Path) -> None:
    write_tar(web.root / "gh.tgz", [exe("gh_2.0/bin/gh", ELF), Entry(name="gh_2.0/README")])
    tool = BinaryTool(name="github-cli", version="2.0", url=web.url + "/gh.tgz")
    inputs = _resolve(tool, tmp_path)
    assert (inputs["format"], inputs["bin"]) == ("tgz", "github-cli")
    with pytest.raises(BuildError, match=r"gh.tgz has no file named 'github-cli'.*gh_2.0/bin/gh"):
        _build(inputs, tmp_path)


def test_a_project_file_is_pinned_by_its_digest(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "vendor").mkdir(parents=True)
    write_tar(project / "vendor/mytool.tar.xz", [exe("mytool", ELF)], xz=True)
    tool = BinaryTool(name="mytool", version="0.1", path="vendor/mytool.tar.xz")
    inputs = _resolve(tool, tmp_path)
    assert inputs["path"] == "vendor/mytool.tar.xz"
    assert inputs["format"] == "tar.xz"
    prefix, _ = _build(inputs, tmp_path)
    assert (prefix / "bin/mytool").read_bytes() == ELF

    write_tar(project / "vendor/mytool.tar.xz", [exe("mytool", b"changed")], xz=True)
    with pytest.raises(BuildError, match="sandbox lock --update mytool"):
        _build(inputs, tmp_path)


def test_a_path_outside_the_project_is_refused(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "secret").write_text("x")
    tool = BinaryTool(name="t", version="1", path="../secret")
    with pytest.raises(ResolutionError, match="not a file inside the project"):
        _resolve(tool, tmp_path)


def test_an_unknown_placeholder_is_a_resolution_error(tmp_path: Path) -> None:
    tool = BinaryTool(name="t", version="1", url="https://example.invalid/{os}/{arch}/t")
    with pytest.raises(ResolutionError, match=r"unsupported placeholder \{os\}"):
        _resolve(tool, tmp_path)


def test_auth_env_reaches_the_server_at_lock_and_build_time(
    web: Web, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    web.put("private/tool", ELF)
    web.auth["/private/tool"] = "Bearer t0ken"
    monkeypatch.setenv("TOOL_TOKEN", "t0ken")
    tool = BinaryTool(
        name="tool", version="1", url=web.url + "/private/tool", auth_env="TOOL_TOKEN"
    )
    inputs = _resolve(tool, tmp_path)
    (tmp_path / "dl" / str(inputs["sha256"])).unlink()  # a fresh machine: build downloads again
    prefix, _ = _build(inputs, tmp_path, auth_env="TOOL_TOKEN")
    assert (prefix / "bin/tool").read_bytes() == ELF
    assert web.hits("private/tool") == 2
