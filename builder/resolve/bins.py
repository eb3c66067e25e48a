"""`[tools.bin.<name>]`: one downloaded executable (or an archive holding it), pinned by sha256.

A tool's publisher rarely has an index this tool could read, so lock time downloads the file
once (the URL with `{version}` and `{arch}` filled in, arch being amd64 or arm64) and records
the digest of its bytes; a `path` in the project is hashed where it is. From then on the
digest is the contract: build fetches the same URL into the download cache and refuses any
other bytes. The archive format is read from the file name (.tar.gz, .tgz, .tar.xz, .zip);
anything else is the executable itself.

Build time unpacks the file into the folder that becomes /opt/sandbox/tools/bin/<name>/ and
makes `bin/<bin>` the executable (a relative symlink when the archive keeps it elsewhere), so
that folder alone goes on PATH.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from builder.core.errors import BuilderError, BuildError, ResolutionError
from builder.core.unpack import unpack, walk
from builder.model.spec import BinaryTool
from builder.model.toolinputs import BinToolInputs
from builder.net.downloads import fetch

IMAGE_ROOT = "/opt/sandbox/tools/bin"
_ARCH = {"linux/amd64": "amd64", "linux/arm64": "arm64"}
_FORMATS = ((".tar.gz", "tar.gz"), (".tgz", "tgz"), (".tar.xz", "tar.xz"), (".zip", "zip"))
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def resolve_bin(
    tool: BinaryTool, *, project_dir: Path, platform: str, downloads: Path
) -> dict[str, Any]:
    """Pin `tool` for `platform`: its source, sha256, archive format and executable name."""
    if tool.url is not None:
        url = _expand(tool, platform)
        archive = fetch(
            url,
            sha256=None,
            dest_dir=downloads,
            what=tool.name,
            error=ResolutionError,
            auth_env=tool.auth_env,
        )
        source, digest, fmt = {"url": url}, archive.name, archive_format(urlsplit(url).path)
    else:
        assert tool.path is not None  # spec.py demands exactly one of url and path
        path = _project_file(tool.name, tool.path, project_dir, ResolutionError)
        source, digest, fmt = {"path": tool.path}, _sha256(path), archive_format(path.name)
    return {
        "name": tool.name,
        "version": tool.version,
        **source,
        "sha256": digest,
        "format": fmt,
        "bin": tool.binary or tool.name,
    }


def archive_format(file_name: str) -> str:
    """The unpack format a file name implies; `raw` for a bare executable."""
    lowered = file_name.lower()
    return next((fmt for suffix, fmt in _FORMATS if lowered.endswith(suffix)), "raw")


def bin_archive(
    inputs: BinToolInputs, *, project_dir: Path, downloads: Path, auth_env: str | None = None
) -> Path:
    """The locked file, checked against its sha256 (build time)."""
    name, expected = inputs.name, inputs.sha256
    if inputs.url is not None:
        return fetch(inputs.url, sha256=expected, dest_dir=downloads, what=name, auth_env=auth_env)
    path = _project_file(name, inputs.path or "", project_dir, BuildError)
    actual = _sha256(path)
    if actual != expected:
        msg = (
            f"tools.bin.{name}: {inputs.path} changed since sandbox.lock was made "
            f"(sha256 {actual}, locked {expected}). Run `sandbox lock --update {name}`."
        )
        raise BuildError(msg)
    return path


def layout_bin(inputs: BinToolInputs, archive: Path, prefix_dir: Path) -> dict[str, str]:
    """Unpack `archive` into `prefix_dir` with the executable at bin/<bin>; return its env."""
    name, binary = inputs.name, inputs.bin
    prefix_dir.mkdir(parents=True, exist_ok=True)
    prefix_dir.chmod(0o755)
    if inputs.format == "raw":
        unpack(archive, prefix_dir / "bin", fmt="raw", target=binary)
    else:
        unpack(archive, prefix_dir, fmt=inputs.format)
        _link_executable(name, binary, inputs.source, prefix_dir)
    return {"PATH": f"{IMAGE_ROOT}/{name}/bin"}


def _link_executable(name: str, binary: str, source: str, prefix_dir: Path) -> None:
    files = [p for p in walk(prefix_dir) if p.is_file() and not p.is_symlink()]
    found = [p for p in files if p.name == binary]
    if len(found) > 1:  # e.g. a copy for another platform beside the real one
        found = [p for p in found if os.access(p, os.X_OK)] or found
    if len(found) != 1:
        problem = f"has {len(found)} files" if found else "has no file"
        candidates = found or [p for p in files if os.access(p, os.X_OK)]
        listing = ", ".join(p.relative_to(prefix_dir).as_posix() for p in candidates[:20])
        msg = (
            f"tools.bin.{name}: {source} {problem} named {binary!r} (executables: "
            f"{listing or 'none'}). Set `bin` in [tools.bin.{name}] to the executable's name."
        )
        raise BuildError(msg)
    executable = found[0]
    executable.chmod(0o755)
    link = prefix_dir / "bin" / binary
    if executable == link:
        return
    if link.is_symlink() or link.exists():
        msg = f"tools.bin.{name}: {source} has a bin/{binary} that is not the executable."
        raise BuildError(msg)
    link.parent.mkdir(mode=0o755, exist_ok=True)
    link.symlink_to(os.path.relpath(executable, link.parent))


def _expand(tool: BinaryTool, platform: str) -> str:
    assert tool.url is not None
    values = {"version": tool.version, "arch": _ARCH.get(platform, "")}
    unknown = [m for m in _PLACEHOLDER.findall(tool.url) if m not in values]
    if unknown or not values["arch"]:
        what = f"placeholder {{{unknown[0]}}}" if unknown else f"platform {platform!r}"
        msg = (
            f"tools.bin.{tool.name}: the url uses an unsupported {what}. Only {{version}} "
            f"and {{arch}} (amd64 or arm64) are filled in; write the rest out."
        )
        raise ResolutionError(msg)
    return _PLACEHOLDER.sub(lambda m: values[m[1]], tool.url)


def _project_file(name: str, rel: str, project_dir: Path, error: type[BuilderError]) -> Path:
    path = (project_dir / rel).resolve()
    if not path.is_relative_to(project_dir.resolve()) or not path.is_file():
        msg = (
            f"tools.bin.{name}: `path = {rel!r}` is not a file inside the project "
            f"({project_dir}). Fix the path in sandbox.toml."
        )
        raise error(msg)
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
