"""The base and system layers are slim as Debian's own slim images are, unless `[system] docs =
true`.

dpkg is told to leave documentation (but copyright files), man and info pages and
translations out of what the system step installs, a debootstrapped base is trimmed to what
dpkg would have unpacked under the same rules (builder/kinds/slim.py), and the config stays in
the image so what the agent installs later is slim alike. The image still works: a login shell
runs and `sandbox check` passes.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import Project, docker

pytestmark = pytest.mark.docker

SPEC = """
[image]
name = "sandbox-test/slim"
user = "agent"

[base]
bootstrap = {{ suite = "bookworm" }}

[system]
packages = ["git", "jq"]  # git: what `check` asks of every agent's image
{docs}
"""

CONFIG = "etc/dpkg/dpkg.cfg.d/sandbox-builder-slim"


@dataclass(frozen=True)
class Built:
    image: str
    base: set[str]  # the regular files of each layer, as the tar names them (symlinks stay, as
    system: set[str]  # dpkg unpacks those whatever its filters say)


def _files(project: Project, built: dict[str, object], node: str) -> set[str]:
    nodes = built["nodes"]
    assert isinstance(nodes, list)
    layer = next(n["layer"] for n in nodes if n["name"] == node)
    path = project.cache / "layers" / f"{layer.removeprefix('sha256:')}.tar"
    with tarfile.open(path) as tar:
        return {m.name for m in tar if m.isfile()}


def _build(root: Path, cache: Path, docs: str) -> tuple[Project, Built]:
    project = Project(root=root, cache=cache)
    project.write(SPEC.format(docs=docs))
    project.ok("lock")
    built = json.loads(project.ok("build", "--json").out)
    image = str(built["image"]["id"])
    return project, Built(
        image=image, base=_files(project, built, "base"), system=_files(project, built, "system")
    )


@pytest.fixture(scope="module")
def slim(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> tuple[Project, Built]:
    return _build(tmp_path_factory.mktemp("slim"), shared_cache, docs="")


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> Built:
    return _build(tmp_path_factory.mktemp("kept"), shared_cache, docs="docs = true")[1]


def _docs(files: set[str]) -> list[str]:
    return [n for n in files if n.startswith("usr/share/doc/") and not n.endswith("/copyright")]


def _under(files: set[str], folder: str) -> list[str]:
    return [n for n in files if n.startswith(folder)]


def test_the_system_layer_leaves_out_docs_man_pages_and_translations(
    slim: tuple[Project, Built], kept: Built
) -> None:
    system = slim[1].system
    assert "usr/bin/jq" in system
    assert "usr/share/doc/jq/copyright" in system  # licences stay
    assert not _under(system, "usr/share/man/")
    assert not _docs(system)
    assert "usr/share/man/man1/jq.1.gz" in kept.system
    assert _docs(kept.system)


def test_the_debootstrapped_base_is_slim_and_says_so_to_later_installs(
    slim: tuple[Project, Built],
) -> None:
    base = slim[1].base
    assert CONFIG in base  # every later apt install (the agent's too) honours it
    assert CONFIG not in slim[1].system  # the system step found it there: no second copy
    assert "usr/share/doc/bash/copyright" in base
    assert "usr/bin/bash" in base
    assert not _docs(base)
    for folder in ("usr/share/man/", "usr/share/info/", "usr/share/lintian/overrides/"):
        assert not _under(base, folder), folder
    assert not [n for n in _under(base, "usr/share/locale/") if not n.endswith("locale.alias")]
    locales = {n.split("/")[3] for n in _under(base, "usr/lib/locale/")}
    assert locales == {"C.utf8"}


def test_docs_true_keeps_all_of_it_in_the_base_too(kept: Built) -> None:
    assert CONFIG not in kept.base
    assert CONFIG not in kept.system
    assert "usr/share/man/man1/bash.1.gz" in kept.base
    assert _docs(kept.base)
    assert [n for n in _under(kept.base, "usr/share/locale/") if n.endswith(".mo")]


def test_the_slim_image_runs_a_login_shell_and_passes_check(
    slim: tuple[Project, Built],
) -> None:
    project, built = slim
    out = docker("run", "--rm", "--user", "12345", built.image, "bash", "-lc", "jq -n 1+1")
    assert out == "2"
    project.ok("check", "--image", built.image)
