"""The command shims pnpm writes in `node_modules/.bin`, text for text.

pnpm (link-bins, @zkochan/cmd-shim 7) does not symlink a package's executables: it writes a
`/bin/sh` script per command that sets NODE_PATH (the package's own node_modules, the virtual
store folder holding it, and the hoisted `.pnpm/node_modules`) and runs the script with the
program its `#!` line names, `$basedir/<program>` first. The script itself is made 755.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from builder.kinds.deps.pnpmlock import Package
from builder.kinds.npm.tree import NotOnHost

_SHEBANG = re.compile(r"^#!\s*(?:/usr/bin/env(?:\s+-S\s*)?)?\s*([^ \t]+)(.*)$")
_BY_EXTENSION = {".js": "node", ".cjs": "node", ".mjs": "node", ".sh": "sh"}
_HEAD = """#!/bin/sh
basedir=$(dirname "$(echo "$0" | sed -e 's,\\\\,/,g')")

case `uname` in
    *CYGWIN*|*MINGW*|*MSYS*)
        if command -v cygpath > /dev/null 2>&1; then
            basedir=`cygpath -w "$basedir"`
        fi
    ;;
esac

"""


def package_bins(manifest: Mapping[str, Any], pkg: Package) -> list[tuple[str, str]]:
    """(command, script path in the package) of each executable, as pnpm's commandsFromBin
    reads `bin`: a scope dropped from a command, odd names and paths leaving it skipped."""
    if (manifest.get("directories") or {}).get("bin"):
        msg = f"{pkg.dep_path} names its executables by a folder (directories.bin)"
        raise NotOnHost(msg)
    declared = manifest.get("bin") or {}
    if isinstance(declared, str):
        declared = {str(manifest.get("name") or pkg.name): declared}
    found = []
    for command, script in declared.items():
        name = command.split("/", 1)[1] if command.startswith("@") and "/" in command else command
        if name in ("", ".", "..") or (name != quote(name, safe="-_.!~*'()") and name != "$"):
            continue
        clean = posixpath.normpath(str(script))
        if clean.startswith(("../", "/")) or clean in ("..", "."):
            continue
        found.append((name, clean))
    return found


def command_shim(*, target: str, real: str, shim: str, content: bytes, extra: str) -> bytes:
    """The shim at `shim` for the script at `target` (via the package's symlink) whose real
    path is `real` (paths in the layer, no leading /), `content` its bytes; `extra` the
    hoisted folder NODE_PATH ends with."""
    program, args = _runtime(content, target)
    relative = posixpath.relpath(target, posixpath.dirname(shim))
    quoted = f'"$basedir/{relative}"'
    paths = _node_paths("/" + real)
    node_path = ":".join([*paths, *([extra] if extra and extra not in paths else [])])
    text = _HEAD
    if node_path:
        text += (
            f'if [ -z "$NODE_PATH" ]; then\n  export NODE_PATH="{node_path}"\n'
            f'else\n  export NODE_PATH="{node_path}:$NODE_PATH"\nfi\n'
        )
    if program:
        text += (
            f'if [ -x "$basedir/{program}" ]; then\n'
            f'  exec "$basedir/{program}" {args} {quoted} "$@"\n'
            f'else\n  exec {program} {args} {quoted} "$@"\nfi\n'
        )
    else:
        text += f'{quoted}   "$@"\nexit $?\n'
    return text.encode()


def _runtime(content: bytes, target: str) -> tuple[str | None, str]:
    """cmd-shim's searchScriptRuntime: the `#!` line's program and arguments, else the
    program the script's extension names."""
    text = content.decode("utf-8", errors="replace").strip()
    first = re.split(r"\r*\n", text, maxsplit=1)[0]
    shebang = _SHEBANG.match(first)
    if shebang:
        return shebang.group(1), shebang.group(2)
    return _BY_EXTENSION.get(posixpath.splitext(target)[1].lower()), ""


def _node_paths(script: str) -> list[str]:
    """link-bins' getBinNodePaths: from the script's real folder up to the first
    `node_modules` not inside another, that folder and its package's own node_modules."""
    folder = posixpath.dirname(script)
    current = folder
    while current not in ("/", ""):
        parent = posixpath.dirname(current)
        if posixpath.basename(current) == "node_modules" and (
            posixpath.basename(parent) != "node_modules"
        ):
            found = []
            rel = posixpath.relpath(folder, current)
            if rel != ".":
                parts = rel.split("/")
                package = "/".join(parts[:2]) if parts[0].startswith("@") else parts[0]
                found.append(f"{current}/{package}/node_modules")
            return [*found, current]
        current = parent
    return []
