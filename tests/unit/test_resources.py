"""`[sandbox.resources]` and `[sandbox.logs]` values (builder/model/resources.py), through the CLI.

A bad value must stop `sandbox lock` with exit 2 before anything is written, naming the file,
the key, the value and a good example; a good one must pass the spec check (`lock --check`
then exits 3, for the missing lock, not 2) and reach the overlay as the string Docker reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.model.resources import docker_size
from builder.model.specfile import load_spec
from tests.unit.clirun import sandbox
from tests.unit.spec_corpus import VALID


def _project(tmp_path: Path, table: str, line: str) -> Path:
    path = tmp_path / "sandbox.toml"
    path.write_text(f"{VALID}\n[sandbox.{table}]\n{line}\n")
    return path


BAD = [
    ("resources", "memory", "4", "4 must be a quoted string", '`memory = "4g"`'),
    ("resources", "memory", "4.5", "4.5 must be a quoted string", '`memory = "4g"`'),
    ("resources", "memory", '"four gigs"', "'four gigs' is not a size", '`memory = "4g"`'),
    ("resources", "memory", '""', "'' is not a size", '`memory = "4g"`'),
    ("resources", "memory", '"-4g"', "'-4g' is not a size", '`memory = "4g"`'),
    ("resources", "memory", '"-1"', "'-1' is not a size", '`memory = "4g"`'),
    ("resources", "memory", '"0"', "'0' is below 6m", '`memory = "4g"`'),
    ("resources", "memory", '"4m"', "'4m' is below 6m", '`memory = "4g"`'),
    ("resources", "memory", '"4i"', "'4i' is not a size", '`memory = "4g"`'),
    ("resources", "memory", '" 4g"', "' 4g' is not a size", '`memory = "4g"`'),
    ("resources", "memory", "true", "true must be a quoted string", '`memory = "4g"`'),
    ("resources", "memory", '["4g"]', '["4g"] must be a quoted string', '`memory = "4g"`'),
    (
        "resources",
        "memory_reservation",
        '"1x"',
        "'1x' is not a size",
        '`memory_reservation = "1g"`',
    ),
    ("resources", "memory_swap", '"-2"', "'-2' is not a size", '`memory_swap = "8g"'),
    ("resources", "memory_swap", "-1", "-1 must be a quoted string", '`memory_swap = "8g"'),
    ("resources", "cpus", '"two"', "'two' is not a decimal number", '`cpus = "2"'),
    ("resources", "cpus", '"0"', "'0' is below 0.01", '`cpus = "2"'),
    ("resources", "cpus", "0", "'0' is below 0.01", '`cpus = "2"'),
    ("resources", "cpus", "-1", "'-1' is not a decimal number", '`cpus = "2"'),
    ("resources", "cpus", '""', "'' is not a decimal number", '`cpus = "2"'),
    ("resources", "cpus", '"1e3"', "'1e3' is not a decimal number", '`cpus = "2"'),
    ("resources", "cpus", '"1.0000000001"', "more than 9 decimal places", '`cpus = "2"'),
    ("resources", "cpus", "true", "true must be a quoted string", '`cpus = "2"'),
    ("resources", "tmpfs_size", '"512mb"', "'512mb' is not a tmpfs size", '`tmpfs_size = "512m"`'),
    ("resources", "tmpfs_size", '"1.5g"', "'1.5g' is not a tmpfs size", '`tmpfs_size = "512m"`'),
    ("resources", "tmpfs_size", '"0"', "'0' is 0", '`tmpfs_size = "512m"`'),
    ("resources", "tmpfs_size", "512", "512 must be a quoted string", '`tmpfs_size = "512m"`'),
    ("logs", "max_size", '"ten megs"', "'ten megs' is not a size", '`max_size = "10m"`'),
    ("logs", "max_size", '"0"', "'0' is 0", '`max_size = "10m"`'),
    ("logs", "max_size", "10", "10 must be a quoted string", '`max_size = "10m"`'),
    ("logs", "max_file", "0", "whole number of files, 1 or more", "`max_file = 3`"),
    ("logs", "max_file", '"3"', "whole number of files, 1 or more", "`max_file = 3`"),
]


@pytest.mark.parametrize(
    ("table", "key", "value", "problem", "example"),
    BAD,
    ids=[f"{b[1]}={b[2]}" for b in BAD],
)
def test_a_value_docker_would_refuse_stops_lock_naming_key_value_and_example(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    table: str,
    key: str,
    value: str,
    problem: str,
    example: str,
) -> None:
    path = _project(tmp_path, table, f"{key} = {value}")
    monkeypatch.chdir(tmp_path)

    done = sandbox("-f", path, "lock", env={"SANDBOX_CACHE_DIR": None})

    assert done.exit_code == 2, done.stderr
    assert f"{path}:" in done.stderr
    assert f"`sandbox.{table}.{key}`" in done.stderr
    assert problem in done.stderr
    assert example in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sandbox.toml"]


GOOD = [
    ("resources", "memory", '"4g"', "4g"),
    ("resources", "memory", '"512m"', "512m"),
    ("resources", "memory", '"10240k"', "10240k"),
    ("resources", "memory", '"1.5G"', "1.5G"),
    ("resources", "memory", '"8GiB"', "8GiB"),
    ("resources", "memory", '"2 gb"', "2 gb"),
    ("resources", "memory", '"4294967296"', "4294967296"),
    ("resources", "memory", '"6m"', "6m"),
    ("resources", "memory_reservation", '"1g"', "1g"),
    ("resources", "memory_swap", '"-1"', "-1"),
    ("resources", "memory_swap", '"8g"', "8g"),
    ("resources", "cpus", '"2"', "2"),
    ("resources", "cpus", '"1.5"', "1.5"),
    ("resources", "cpus", '"0.01"', "0.01"),
    ("resources", "cpus", "2", "2"),
    ("resources", "cpus", "0.5", "0.5"),
    ("resources", "tmpfs_size", '"512m"', "512m"),
    ("resources", "tmpfs_size", '"1G"', "1G"),
    ("resources", "tmpfs_size", '"1024k"', "1024k"),
    ("resources", "tmpfs_size", '"1048576"', "1048576"),
    ("resources", "tmpfs_size", '"50%"', "50%"),
    ("logs", "max_size", '"10m"', "10m"),
]


@pytest.mark.parametrize(
    ("table", "key", "value", "kept"), GOOD, ids=[f"{g[1]}={g[2]}" for g in GOOD]
)
def test_a_value_docker_reads_passes_the_spec_and_is_kept_as_its_string(
    tmp_path: Path, table: str, key: str, value: str, kept: str
) -> None:
    path = _project(tmp_path, table, f"{key} = {value}")

    done = sandbox("-f", path, "lock", "--check", env={"SANDBOX_CACHE_DIR": None})

    assert done.exit_code == 3, done.stderr  # past the spec: only the lock is missing
    sandbox_spec = load_spec(path).sandbox
    assert (sandbox_spec.resources if table == "resources" else sandbox_spec.logs)[key] == kept


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4g", 4 << 30),
        ("512m", 512 << 20),
        ("1.5G", 3 << 29),
        ("8gb", 8 << 30),
        ("8GiB", 8 << 30),
        ("2 m", 2 << 20),
        ("100", 100),
        ("-1", -1),
        ("lots", None),
        ("4i", None),
        ("4gg", None),
    ],
)
def test_docker_sizes(text: str, size: int | None) -> None:
    assert docker_size(text) == size
