"""What a slim image leaves out, defined once for the base and the system layer.

The paths Debian's own slim images exclude (debuerreotype's slimify): documentation but each
package's copyright file, man and info pages, translations but locale.alias, lintian's and
linda's files. Locales themselves (/usr/share/i18n, /usr/lib/locale: a bookworm minbase has
C.utf8 only) are not touched.

The rules are dpkg `path-exclude`/`path-include` filters, written to `CONFIG` in the image so
that every later `apt-get install` (the system step's, the agent's own) honours them; a
debootstrapped root is trimmed to what dpkg would have unpacked under them (`trim`), since
debootstrap installs before any config of ours is there. `[system] docs = true` keeps all of
it: neither the base nor the system layer is slimmed, and no config is written.
"""

from __future__ import annotations

import os
import re
from fnmatch import fnmatchcase
from pathlib import Path

CONFIG_DIR = "/etc/dpkg/dpkg.cfg.d"
CONFIG = f"{CONFIG_DIR}/sandbox-builder-slim"

# dpkg's order: the last filter a path matches decides (dpkg(1), --path-exclude).
RULES: tuple[tuple[str, str], ...] = (
    ("path-exclude", "/usr/share/doc/*"),
    ("path-include", "/usr/share/doc/*/copyright"),
    ("path-exclude", "/usr/share/info/*"),
    ("path-exclude", "/usr/share/linda/*"),
    ("path-exclude", "/usr/share/lintian/overrides/*"),
    ("path-exclude", "/usr/share/locale/*"),
    ("path-include", "/usr/share/locale/locale.alias"),
    ("path-exclude", "/usr/share/man/*"),
    ("path-exclude", "/usr/share/groff/*"),
)


def dpkg_config() -> str:
    """The text of `CONFIG`: the rules, as dpkg reads them."""
    head = "# sandbox-builder: [system] docs = false in sandbox.toml; set it to true to keep these"
    return "\n".join([head, *(f"{kind} {pattern}" for kind, pattern in RULES)]) + "\n"


def config_script() -> str:
    """Shell writing `CONFIG` in a step's container, before it installs anything, unless the
    image holds it alike already (a slim base does): the step's layer then holds no copy."""
    fresh = "/tmp/sandbox-builder-slim"  # /tmp is scratch: never in a layer
    return (
        f"cat > {fresh} <<'EOF'\n{dpkg_config()}EOF\n"
        f'if [ "$(cat {CONFIG} 2>/dev/null)" != "$(cat {fresh})" ]; then\n'
        f"  mkdir -p {CONFIG_DIR} && cp {fresh} {CONFIG}\nfi\n"
    )


def excluded(path: str, *, entry: bool = False) -> bool:
    """Whether dpkg leaves `path` (absolute, as in the image) out under the rules; `entry`:
    the path is a folder or a symlink.

    As dpkg's filters do (dpkg(1), --path-exclude; src/main/filters.c): the last rule a path
    matches decides, by fnmatch(3) without FNM_PATHNAME (`*` spans `/`, as in `fnmatchcase`);
    and a folder or symlink that would be left out is kept after all when its path starts
    with the fixed part of an include rule (up to its first wildcard), since it may lead to an
    included file. So every folder and symlink under /usr/share/doc stays (perl's
    /usr/share/doc/perl/Changes.gz, say), and none under /usr/share/man.
    """
    out = False
    for kind, pattern in RULES:
        if fnmatchcase(path, pattern):
            out = kind == "path-exclude"
    if out and entry:
        out = not any(path.startswith(fixed) for fixed in _INCLUDED_PREFIXES)
    return out


_INCLUDED_PREFIXES = tuple(
    re.split(r"[*?\[\\]", pattern, maxsplit=1)[0].rstrip("/")
    for kind, pattern in RULES
    if kind == "path-include"
)


def trim(root: Path) -> None:
    """Delete from the root filesystem at `root` what the rules exclude, and write `CONFIG`.

    The files and symlinks `excluded` names go, then every excluded folder left empty, deepest
    first: the root dpkg would have unpacked had `CONFIG` been there when it installed.
    """
    folders: list[Path] = []
    tops = {p.split("*", 1)[0].rstrip("/") for kind, p in RULES if kind == "path-exclude"}
    for top in sorted(tops):
        start = root / top.lstrip("/")
        if not start.is_dir() or start.is_symlink():
            continue
        for here, dirs, files in os.walk(start):
            folder = Path(here)
            image_path = "/" + folder.relative_to(root).as_posix()
            if excluded(image_path, entry=True):
                folders.append(folder)
            for name in files + [d for d in dirs if (folder / d).is_symlink()]:
                path = folder / name
                if excluded(f"{image_path}/{name}", entry=path.is_symlink()):
                    path.unlink()
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    config = root / CONFIG.lstrip("/")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(dpkg_config())
    config.chmod(0o644)
