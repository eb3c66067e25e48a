"""The system recipe's setuid stripping (builder/recipes/system.py), run by a real `find`."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from builder.recipes.system import strip_setuid


def test_strip_setuid_clears_every_bit_but_the_allowed_paths(tmp_path: Path) -> None:
    files = {name: tmp_path / name for name in ("passwd", "wall", "sudo", "odd[1]*", "plain")}
    for path in files.values():
        path.write_text("x")
    for name in ("passwd", "sudo", "odd[1]*"):
        files[name].chmod(0o4755)
    files["wall"].chmod(0o2755)
    allowed = [str(files["sudo"]), str(files["odd[1]*"])]

    script = strip_setuid(allowed).replace("find / ", f"find {tmp_path} ", 1)
    subprocess.run(["sh", "-ec", script], check=True)

    def special(name: str) -> int:
        return stat.S_IMODE(files[name].stat().st_mode) & 0o6000

    assert special("passwd") == 0
    assert special("wall") == 0
    assert special("sudo") == 0o4000
    assert special("odd[1]*") == 0o4000, "glob characters in an allowed path match literally"
    assert "'/x; rm -rf /'" in strip_setuid(["/x; rm -rf /"])
