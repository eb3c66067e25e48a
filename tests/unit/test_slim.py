"""What a slim image leaves out (builder/kinds/slim.py): the rules, and a root trimmed by them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from builder.kinds import slim


@pytest.mark.parametrize(
    ("path", "out"),
    [
        ("/usr/share/doc/jq/README", True),
        ("/usr/share/doc/jq/copyright", False),
        ("/usr/share/doc/jq/examples/a/copyright", False),  # `*` spans `/`, as in dpkg
        ("/usr/share/doc/jq", True),
        ("/usr/share/doc", False),
        ("/usr/share/man/man1/jq.1.gz", True),
        ("/usr/share/info/dir", True),
        ("/usr/share/locale/de/LC_MESSAGES/dpkg.mo", True),
        ("/usr/share/locale/locale.alias", False),
        ("/usr/share/lintian/overrides/jq", True),
        ("/usr/lib/locale/C.utf8/LC_CTYPE", False),
        ("/usr/share/i18n/SUPPORTED", False),
        ("/usr/bin/jq", False),
    ],
)
def test_the_last_rule_a_path_matches_decides_as_in_dpkg(path: str, out: bool) -> None:
    assert slim.excluded(path) is out


@pytest.mark.parametrize(
    ("path", "out"),
    [
        ("/usr/share/doc/jq", False),
        ("/usr/share/doc/perl/Changes.gz", False),
        ("/usr/share/man/man1/perl5.36.0.1.gz", True),
        ("/usr/share/locale/de", True),
    ],
)
def test_a_folder_or_symlink_that_may_lead_to_an_included_file_stays(path: str, out: bool) -> None:
    assert slim.excluded(path, entry=True) is out


def test_the_config_holds_every_rule_in_order() -> None:
    lines = slim.dpkg_config().splitlines()
    assert lines[1:] == [f"{kind} {pattern}" for kind, pattern in slim.RULES]
    assert slim.dpkg_config() in slim.config_script()


def _run_config_script(root: Path) -> None:
    """The step's script, run by sh with its paths moved under `root`."""
    script = slim.config_script().replace("/tmp/", "@/tmp/").replace("/etc/dpkg", "@/etc/dpkg")
    script = script.replace("@", str(root))
    (root / "tmp").mkdir(exist_ok=True)
    subprocess.run(["sh", "-ec", script], check=True)


def test_the_step_writes_the_config_only_when_the_image_lacks_it_alike(tmp_path: Path) -> None:
    config = tmp_path / slim.CONFIG.lstrip("/")
    _run_config_script(tmp_path)  # an image base without it
    assert config.read_text() == slim.dpkg_config()

    os.utime(config, (0, 0))  # a slim base's: left alone, so the layer holds no copy
    _run_config_script(tmp_path)
    assert config.stat().st_mtime == 0

    config.write_text("path-exclude /usr/share/doc/*\n")  # another: rewritten
    _run_config_script(tmp_path)
    assert config.read_text() == slim.dpkg_config()


def _tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def _left(root: Path) -> set[str]:
    found = set()
    for here, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add((Path(here) / name).relative_to(root).as_posix())
    return found


def test_a_trimmed_root_keeps_copyrights_and_what_is_not_covered(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        [
            "usr/bin/jq",
            "usr/share/doc/jq/copyright",
            "usr/share/doc/jq/changelog.Debian.gz",
            "usr/share/doc/libfoo/NEWS.gz",
            "usr/share/man/man1/jq.1.gz",
            "usr/share/info/dir",
            "usr/share/locale/locale.alias",
            "usr/share/locale/de/LC_MESSAGES/dpkg.mo",
            "usr/lib/locale/C.utf8/LC_CTYPE",
        ],
    )
    (tmp_path / "usr/share/doc/libbar").symlink_to("jq")  # a doc folder that is a symlink
    (tmp_path / "usr/share/doc/jq/NEWS.gz").symlink_to("changelog.Debian.gz")
    (tmp_path / "usr/share/man/man1/jq1.1.gz").symlink_to("jq.1.gz")

    slim.trim(tmp_path)

    assert _left(tmp_path) == {
        "usr",
        "usr/bin",
        "usr/bin/jq",
        "usr/lib",
        "usr/lib/locale",
        "usr/lib/locale/C.utf8",
        "usr/lib/locale/C.utf8/LC_CTYPE",
        "usr/share",
        "usr/share/doc",
        "usr/share/doc/jq",
        "usr/share/doc/jq/copyright",
        "usr/share/doc/jq/NEWS.gz",  # dpkg keeps symlinks that may lead to a copyright
        "usr/share/doc/libbar",
        "usr/share/doc/libfoo",  # its folder too: dpkg would have made it
        "usr/share/man",
        "usr/share/info",
        "usr/share/locale",
        "usr/share/locale/locale.alias",
        "etc",
        "etc/dpkg",
        "etc/dpkg/dpkg.cfg.d",
        "etc/dpkg/dpkg.cfg.d/sandbox-builder-slim",
    }
    config = tmp_path / slim.CONFIG.lstrip("/")
    assert config.read_text() == slim.dpkg_config()
    assert config.stat().st_mode & 0o777 == 0o644


def test_trimming_a_root_without_those_folders_writes_just_the_config(tmp_path: Path) -> None:
    slim.trim(tmp_path)
    assert _left(tmp_path) == {
        "etc",
        "etc/dpkg",
        "etc/dpkg/dpkg.cfg.d",
        "etc/dpkg/dpkg.cfg.d/sandbox-builder-slim",
    }
