"""/etc/profile.d/sandbox-builder.sh: login shells see the image's Env.

Docker hands every process the config's Env, but Debian's /etc/profile sets PATH afresh for
a login shell (`bash -l`, `sh -l`: dash reads it too), so `bash -lc 'command -v ruff'` found
nothing the image adds under /opt/sandbox. /etc/profile then sources /etc/profile.d/*.sh,
where this script puts the config's PATH back in front, keeping after it any entry /etc/profile
or an earlier profile script of the base image added (a later one adds its own on top), and
sets every other variable of the Env that the container does not already have (`su -`,
`env -i bash -l`), so a `docker run -e NAME=...` still wins. Debian's zsh needs nothing:
/etc/zsh/zshenv only sets PATH when it is empty or "/bin:/usr/bin", and zsh never reads
/etc/profile.

The script is a function of the final Env alone, which depends on every node, so it is not
part of any node: `profile_layer` makes it at image assembly as one more small layer on top
(a deterministic tar: sorted, uid 0, mtime = the lock's epoch, mode 0644), named in the cache
by its diff ID like every layer, so a publish, a pull or another platform's image carries it.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from collections.abc import Mapping
from pathlib import Path

from builder.core.atomic import write_atomic
from builder.store.cache import Cache, Layer

PROFILE = "etc/profile.d/sandbox-builder.sh"
HISTORY = "profile"  # the layer's history entry: `sandbox-builder: profile`
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # what a POSIX shell can export
_PATH_MERGE = """\
_sandbox_path={path}
_sandbox_rest="$PATH:"
while [ -n "$_sandbox_rest" ]; do
  _sandbox_dir=${{_sandbox_rest%%:*}}
  _sandbox_rest=${{_sandbox_rest#*:}}
  case ":$_sandbox_path:" in
    *":$_sandbox_dir:"*) ;;
    *) [ -z "$_sandbox_dir" ] || _sandbox_path="$_sandbox_path:$_sandbox_dir" ;;
  esac
done
export PATH="$_sandbox_path"
unset _sandbox_path _sandbox_rest _sandbox_dir
"""


def quote(value: str) -> str:
    """`value` as one single-quoted shell word: nothing in it is expanded."""
    return "'" + value.replace("'", "'\\''") + "'"


def profile_script(env: Mapping[str, str]) -> bytes:
    """The script for the image config's `env` (sorted, so the same Env gives the same bytes)."""
    lines = [
        "# Written by sandbox-builder from the image's Env: login shells see what every",
        "# process of the container sees. The image's PATH comes first.",
    ]
    if "PATH" in env:
        lines.append(_PATH_MERGE.format(path=quote(env["PATH"])).rstrip("\n"))
    for name in sorted(env):
        if name != "PATH" and _NAME.fullmatch(name):
            lines.append(f'[ -n "${{{name}+set}}" ] || {name}={quote(env[name])}')
            lines.append(f"export {name}")
    return ("\n".join(lines) + "\n").encode()


def profile_tar(env: Mapping[str, str], *, epoch: int) -> bytes:
    """The layer's tar: /etc/profile.d and the script, with fixed metadata."""
    script = profile_script(env)
    out = io.BytesIO()
    with tarfile.TarFile(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folder = tarfile.TarInfo(PROFILE.rsplit("/", 1)[0])
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        script_info = tarfile.TarInfo(PROFILE)
        script_info.size, script_info.mode = len(script), 0o644
        for info in (folder, script_info):
            info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "", ""
        tar.addfile(folder)
        tar.addfile(script_info, io.BytesIO(script))
    return out.getvalue()


def profile_layer(env: Mapping[str, str], *, epoch: int, cache: Cache) -> Layer:
    """The profile layer for `env`, written to the cache's layers unless already there."""
    data = profile_tar(env, epoch=epoch)
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    write_atomic(cache.layer_path(diff_id), data)
    return Layer(diff_id=diff_id, size=len(data))


def is_profile_layer(path: Path) -> bool:
    """Whether the layer tar at `path` is one `profile_tar` made (for naming it in reports:
    no node of the lock owns it)."""
    try:
        with tarfile.open(path) as tar:
            names = [member.name for _, member in zip(range(3), tar, strict=False)]
    except (OSError, tarfile.TarError):
        return False
    return names == [PROFILE.rsplit("/", 1)[0], PROFILE]
