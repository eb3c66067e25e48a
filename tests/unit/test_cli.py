"""The command line's one catch (builder/cli/app.py): a BuilderError is one line and its exit code;
`--verbose` adds the traceback. Run in-process, as the other CLI tests are."""

from __future__ import annotations

from pathlib import Path

from tests.unit.clirun import sandbox


def _broken_spec(tmp_path: Path) -> Path:
    spec = tmp_path / "sandbox.toml"
    spec.write_text('[image]\nname = "acme/sandbox"\n')
    return spec


def test_an_error_is_its_message_and_exit_code(tmp_path: Path) -> None:
    spec = _broken_spec(tmp_path)

    done = sandbox("-f", spec, "status")

    assert done.exit_code == 2
    assert done.stderr == f"error: {spec}: `base`: missing table. Add a [base] table\n"
    assert done.stdout == ""


def test_verbose_adds_the_traceback_before_the_message(tmp_path: Path) -> None:
    spec = _broken_spec(tmp_path)

    done = sandbox("-v", "-f", spec, "status")

    assert done.exit_code == 2
    assert done.stderr.startswith("Traceback (most recent call last):")
    assert "builder.core.errors.SpecError" in done.stderr
    assert done.stderr.endswith(f"error: {spec}: `base`: missing table. Add a [base] table\n")


def test_a_usage_mistake_is_explained_by_typer_before_anything_runs(tmp_path: Path) -> None:
    done = sandbox("-f", _broken_spec(tmp_path), "status", "--platform", "linux")

    assert done.exit_code == 2
    assert "Invalid value for '--platform'" in done.stderr
    assert "`base`" not in done.stderr, "the spec was not read"
