"""Which sandbox.toml a command without `-f` works on (builder/core/layout.py `find_spec`):
the first one in the current folder or a parent, up to the repository root, as uv finds
pyproject.toml; the typer app, the quick build path (builder/cli/entry.py) and its no-op
replay agree, and the cache dir stays beside the spec found."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.cli import entry
from builder.core.layout import find_spec
from tests.unit.clirun import sandbox


@pytest.fixture(autouse=True)
def _no_cache_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANDBOX_CACHE_DIR", raising=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository whose sandbox.toml (an invalid one: reading it is the point) sits at its
    root, with a subfolder a/b."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "a" / "b").mkdir(parents=True)
    (root / "sandbox.toml").write_text('[image]\nname = "acme/sandbox"\n')
    return root


def test_a_subfolder_finds_the_spec_of_its_parent(project: Path) -> None:
    assert find_spec(project / "a" / "b") == project / "sandbox.toml"


def test_the_nearest_spec_wins(project: Path) -> None:
    (project / "a" / "sandbox.toml").write_text("")

    assert find_spec(project / "a" / "b") == project / "a" / "sandbox.toml"


def test_the_search_stops_at_the_repository_root(tmp_path: Path) -> None:
    (tmp_path / "sandbox.toml").write_text("")  # outside the repository: not its spec
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "src").mkdir()

    assert find_spec(tmp_path / "repo" / "src") == tmp_path / "repo" / "src" / "sandbox.toml"


def test_a_git_file_is_a_boundary_too(tmp_path: Path) -> None:
    """A worktree or submodule has a `.git` file, not a folder."""
    (tmp_path / "sandbox.toml").write_text("")
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / ".git").write_text("gitdir: elsewhere\n")

    assert find_spec(tmp_path / "wt") == tmp_path / "wt" / "sandbox.toml"


def test_a_command_in_a_subfolder_reads_the_spec_above(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "a" / "b")

    done = sandbox("status")

    assert done.exit_code == 2
    assert done.stderr.startswith(f"error: {project / 'sandbox.toml'}: `base`: missing table")


def test_no_spec_anywhere_says_where_it_looked_and_what_to_do(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "sandbox.toml").unlink()
    monkeypatch.chdir(project / "a")

    done = sandbox("status")

    assert done.exit_code == 2
    assert done.stderr.startswith(f"error: {project / 'a' / 'sandbox.toml'}: file not found")
    assert "a parent, up to the repository root" in done.stderr
    assert "`sandbox init`" in done.stderr


def test_f_is_taken_as_given(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project / "a")

    done = sandbox("-f", "sandbox.toml", "status")

    assert f"{project / 'a' / 'sandbox.toml'}: file not found" in done.stderr


def test_init_writes_in_the_current_folder_not_the_project_above(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "a")

    done = sandbox("init")

    assert done.exit_code == 0, done.output
    assert (project / "a" / "sandbox.toml").is_file()
    assert (project / "sandbox.toml").read_text() == '[image]\nname = "acme/sandbox"\n'


def test_the_quick_build_path_finds_the_same_spec(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "a" / "b")

    request = entry.quick_build(["build", "--json"])

    assert request is not None
    assert request.spec_file == project / "sandbox.toml"
    assert request.cache_dir is None  # the default: beside the spec


def test_the_noop_replay_looks_in_the_cache_beside_the_spec_found(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: dict[str, object] = {}

    def replay(*, spec_file: Path, cache_dir: Path, as_json: bool) -> bool:
        asked.update(spec_file=spec_file, cache_dir=cache_dir)
        return True  # as if printed: nothing else runs

    monkeypatch.setattr("builder.image.noop.replay", replay)
    monkeypatch.setattr("sys.argv", ["sandbox", "build"])
    monkeypatch.chdir(project / "a" / "b")

    entry.main()

    assert asked == {"spec_file": project / "sandbox.toml", "cache_dir": project / "cache"}
