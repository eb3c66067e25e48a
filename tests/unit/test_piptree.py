"""pip tools laid on the host (builder/kinds/pip/): a venv from wheels built here with
`zipfile`, its layout, its keys, the bytes under any umask or folder, and what goes to a
container and why. No network: the wheels are put in the download cache by sha256."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from builder.core.errors import BuildError
from builder.engine.step import StepContext
from builder.kinds import KINDS
from builder.kinds.pip import python as pythons
from builder.kinds.pip.venv import pyvenv_cfg
from builder.model.lockfile import NodeKind, NodeLock
from builder.model.toolinputs import ImagePython
from builder.store.cache import Cache
from tests.unit.nostage import NeedsEngine, NeedsStage, no_engine, no_stage

EPOCH = 1_700_000_000
PYTHON = {"command": "/usr/bin/python3", "executable": "/usr/bin/python3.11", "version": "3.11.2"}
VENV = "opt/sandbox/tools/pip/hello"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _wheel(name: str, version: str, files: Mapping[str, bytes], entry: str = "") -> bytes:
    """A wheel as a build backend writes one: its files, dist-info, RECORD last."""
    info = f"{name}-{version}.dist-info"
    contents = dict(files)
    contents[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    )
    contents[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    if entry:
        contents[f"{info}/entry_points.txt"] = entry.encode()
    record = [_record_line(n, d) for n, d in contents.items()] + [f"{info}/RECORD,,"]
    contents[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        for file, data in contents.items():
            member = zipfile.ZipInfo(file)
            mode = 0o755 if "/scripts/" in file else 0o644
            member.external_attr = (stat.S_IFREG | mode) << 16
            zf.writestr(member, data)
    return raw.getvalue()


HELLO = _wheel(
    "hello",
    "1.0",
    {
        "hello/__init__.py": b"def main() -> None:\n    print('hi')\n",
        "hello/broken.py": b"print 'python 2'\n",
        # modules an extension module shadows (mypyc's wheels ship both), and one it does not
        "hello/fast.py": b"X = 1\n",
        "hello/fast.cpython-311-x86_64-linux-gnu.so": b"ELF",
        "hello/abi.py": b"X = 1\n",
        "hello/abi.abi3.so": b"ELF",
        "hello/pkg/__init__.py": b"X = 1\n",
        "hello/pkg/__init__.cpython-311-aarch64-linux-gnu.so": b"ELF",
        "hello/old.py": b"X = 1\n",
        "hello/old.cpython-310-x86_64-linux-gnu.so": b"ELF",
        "hello-1.0.data/scripts/hello-sh": b"#!/bin/sh\necho hi\n",
    },
    entry="[console_scripts]\nhello = hello:main\n",
)
DEP = _wheel("dep-lib", "2.0", {"dep_lib.py": b"X = 1\n"})


def _put(cache: Cache, data: bytes) -> str:
    """Put a wheel in the download cache as a fetch leaves it; its sha256."""
    sha = hashlib.sha256(data).hexdigest()
    folder = cache.downloads / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / sha).write_bytes(data)
    return sha


def _pin(cache: Cache, name: str, version: str, data: bytes, file: str) -> dict[str, str]:
    url = f"https://files.example/{file}"
    return {"name": name, "version": version, "sha256": _put(cache, data), "url": url}


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    cache = Cache(tmp_path / "cache", downloads=tmp_path / "dl", store=tmp_path / "store")
    cache.ensure()
    return cache


def _ctx(cache: Cache, said: list[str], *, epoch: int = EPOCH) -> StepContext:
    return StepContext(
        cache=cache,
        engine=no_engine,
        platform="linux/amd64",
        epoch=epoch,
        stage=no_stage,
        project_dir=cache.root.parent,
        say=said.append,
    )


def _node(
    cache: Cache,
    *,
    python: Mapping[str, str] | None = PYTHON,
    key: str = "1",
    hello: Mapping[str, Any] | None = None,
) -> NodeLock:
    pins = [
        _pin(cache, "dep-lib", "2.0", DEP, "dep_lib-2.0-py3-none-any.whl"),
        dict(hello or _pin(cache, "hello", "1.0", HELLO, "hello-1.0-py3-none-any.whl")),
    ]
    inputs: dict[str, Any] = {
        "python": "3.11.2-1+b1",
        "tools": {"hello": {"requirement": "hello==1.0", "packages": pins}},
    }
    if python is not None:
        inputs["interpreter"] = dict(python)
    return NodeLock(
        name="tools.pip",
        kind=NodeKind.TOOLS,
        key="sha256:" + key.ljust(64, "0"),
        parents=("system",),
        inputs=inputs,
    )


def _members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


def _read(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        data = tar.extractfile(name)
        assert data is not None
        return data.read()


def test_a_venv_is_laid_on_the_host_as_venv_and_pip_make_it(cache: Cache) -> None:
    said: list[str] = []
    node = _node(cache)

    result = KINDS.of(node.name).build(_ctx(cache, said), node)

    assert KINDS.of(node.name).needs_stage(node) is False
    venv, links = (cache.layer_path(la.diff_id) for la in result.layers)
    got = _members(venv)
    assert _read(venv, f"{VENV}/pyvenv.cfg").decode() == (
        "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n"
        "executable = /usr/bin/python3.11\n"
        "command = /usr/bin/python3 -m venv --without-pip /opt/sandbox/tools/pip/hello\n"
    )
    assert got[f"{VENV}/bin/python3"].linkname == "/usr/bin/python3"
    assert got[f"{VENV}/bin/python"].linkname == "python3"
    assert got[f"{VENV}/bin/python3.11"].linkname == "python3"
    assert got[f"{VENV}/lib64"].linkname == "lib"
    assert got[f"{VENV}/include/python3.11"].isdir()
    script = _read(venv, f"{VENV}/bin/hello").decode()
    assert script.startswith("#!/opt/sandbox/tools/pip/hello/bin/python\n")
    assert "from hello import main" in script
    assert got[f"{VENV}/bin/hello"].mode == 0o755
    assert got[f"{VENV}/bin/hello-sh"].mode == 0o755
    site = f"{VENV}/lib/python3.11/site-packages"
    assert got[f"{site}/hello/__init__.py"].mode == 0o644
    assert _read(venv, f"{site}/hello-1.0.dist-info/INSTALLER") == b"sandbox-builder\n"
    assert f"{site}/hello-1.0.dist-info/REQUESTED" in got
    assert {m.uid for m in got.values()} == {0}
    assert {m.mtime for m in got.values()} == {EPOCH}
    assert got["opt"].mode == 0o755
    assert _members(links)["opt/sandbox/tools/pip/bin/hello"].linkname == "../hello/bin/hello"
    assert _members(links)["opt/sandbox/tools/pip/bin/hello-sh"].linkname == "../hello/bin/hello-sh"
    assert result.env == {"PATH": "/opt/sandbox/tools/pip/bin"}
    assert said == ["  tools.pip: hello assembled on the host"]


def test_bytecode_is_checked_hash_for_the_image_path(cache: Cache) -> None:
    """Checked-hash .pyc (flags 3) name the file by its image path; what does not compile
    (another Python's syntax) is left without one, as pip's compileall leaves it."""
    result = KINDS.of("tools.pip").build(_ctx(cache, []), _node(cache))
    venv = cache.layer_path(result.layers[0].diff_id)
    cached = f"{VENV}/lib/python3.11/site-packages/hello/__pycache__"
    pyc = _read(venv, f"{cached}/__init__.cpython-311.pyc")

    assert pyc[:4] == pythons.MAGIC["3.11"].to_bytes(2, "little") + b"\r\n"
    assert int.from_bytes(pyc[4:8], "little") == 0b11
    assert b"/opt/sandbox/tools/pip/hello/lib/python3.11/site-packages/hello/__init__.py" in pyc
    assert f"{cached}/broken.cpython-311.pyc" not in _members(venv)


def test_no_bytecode_for_a_module_an_extension_module_shadows(cache: Cache) -> None:
    """Python imports `fast.cpython-311-*.so` (or `.abi3.so`) before `fast.py`: the .py is
    kept, its bytecode, never read, is not written. An extension of another minor version
    shadows nothing."""
    result = KINDS.of("tools.pip").build(_ctx(cache, []), _node(cache))
    got = _members(cache.layer_path(result.layers[0].diff_id))
    site = f"{VENV}/lib/python3.11/site-packages/hello"
    for module in ("fast", "abi", "pkg/__init__"):
        folder, _, name = f"{site}/{module}".rpartition("/")
        assert f"{folder}/{name}.py" in got
        assert f"{folder}/__pycache__/{name}.cpython-311.pyc" not in got
    assert f"{site}/__pycache__/old.cpython-311.pyc" in got
    assert f"{site}/__pycache__/__init__.cpython-311.pyc" in got


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_the_bytes_do_not_depend_on_the_umask_or_the_folder(
    tmp_path: Path, cache: Cache, umask: int
) -> None:
    first = KINDS.of("tools.pip").build(_ctx(cache, []), _node(cache))
    other = Cache(tmp_path / f"elsewhere-{umask:o}", downloads=tmp_path / f"dl-{umask:o}")
    other.ensure()
    old = os.umask(umask)
    try:
        again = KINDS.of("tools.pip").build(_ctx(other, []), _node(other))
    finally:
        os.umask(old)

    assert [la.diff_id for la in again.layers] == [la.diff_id for la in first.layers]


def test_a_new_system_layer_finds_the_venv_in_the_cache(cache: Cache) -> None:
    """The stage is not in a host-laid venv's key: a new parent key (a Debian point release)
    reuses the layers."""
    first = KINDS.of("tools.pip").build(_ctx(cache, []), _node(cache))
    said: list[str] = []

    again = KINDS.of("tools.pip").build(_ctx(cache, said), _node(cache, key="2"))

    assert again.layers == first.layers
    assert said == ["  tools.pip: hello cached (assembled on the host)"]


@pytest.mark.parametrize(
    ("python", "epoch"),
    [
        ({**PYTHON, "version": "3.11.9"}, EPOCH),  # pyvenv.cfg says the patch version
        ({**PYTHON, "command": "/usr/local/bin/python3"}, EPOCH),
        (PYTHON, EPOCH + 1),
    ],
)
def test_what_lands_in_the_bytes_is_in_the_key(
    cache: Cache, python: Mapping[str, str], epoch: int
) -> None:
    first = KINDS.of("tools.pip").build(_ctx(cache, []), _node(cache))
    said: list[str] = []

    again = KINDS.of("tools.pip").build(_ctx(cache, said, epoch=epoch), _node(cache, python=python))

    assert again.layers[0].diff_id != first.layers[0].diff_id
    assert said == ["  tools.pip: hello assembled on the host"]


def test_bytecode_does_not_depend_on_what_this_process_imported(cache: Cache) -> None:
    """Compiled in a fresh interpreter: the same files give the same .pyc bytes however
    much the builder's own process has imported and interned meanwhile."""
    first = KINDS.of("tools.pip").build(_ctx(cache, []), _node(cache))
    import email.mime.multipart  # noqa: F401  (interns more names in this process)
    import xml.dom.minidom  # noqa: F401

    other = Cache(
        cache.root.parent / "other", downloads=cache.downloads, store=cache.root.parent / "s2"
    )
    other.ensure()
    again = KINDS.of("tools.pip").build(_ctx(other, []), _node(other))

    assert again.layers[0].diff_id == first.layers[0].diff_id


def test_an_sdist_goes_to_a_container_and_says_why(cache: Cache) -> None:
    sdist = _pin(cache, "hello", "1.0", b"not a wheel", "hello-1.0.tar.gz")
    node = _node(cache, hello=sdist)
    kind = KINDS.of(node.name)
    said: list[str] = []

    assert kind.needs_stage(node) is True
    assert kind.placement(node) == [
        "hello: in a container: hello 1.0 is an sdist (hello-1.0.tar.gz): pip builds it"
    ]
    with pytest.raises((NeedsStage, NeedsEngine)):
        kind.build(_ctx(cache, said), node)
    assert said == [
        "  tools.pip: hello in a container: hello 1.0 is an sdist (hello-1.0.tar.gz): pip builds it"
    ]


def test_a_lock_without_urls_or_interpreter_goes_to_a_container(cache: Cache) -> None:
    no_url = {"name": "hello", "version": "1.0", "sha256": _put(cache, HELLO)}
    kind = KINDS.of("tools.pip")

    [line] = kind.placement(_node(cache, hello=no_url))
    assert line.startswith("hello: in a container: hello 1.0 has no wheel url in the lock")
    [line] = kind.placement(_node(cache, python=None))
    assert line.startswith("hello: in a container: the lock does not say which python3")
    assert kind.placement(_node(cache)) == ["hello: assembled on the host"]


def test_a_python_this_host_cannot_compile_for_goes_to_a_container(cache: Cache) -> None:
    other = {**PYTHON, "version": "3.9.2", "executable": "/usr/bin/python3.9"}
    [line] = KINDS.of("tools.pip").placement(_node(cache, python=other))
    assert "compiles bytecode this host's python" in line


def test_a_wheel_that_does_not_match_the_lock_is_refused(cache: Cache) -> None:
    pin = _pin(cache, "hello", "1.0", HELLO, "hello-1.0-py3-none-any.whl")
    (cache.downloads / "wheels" / pin["sha256"]).write_bytes(DEP)  # another wheel's bytes
    with pytest.raises(BuildError, match=r"installing hello-1\.0-py3-none-any\.whl into"):
        KINDS.of("tools.pip").build(_ctx(cache, []), _node(cache, hello=pin))


def test_the_pyvenv_cfg_is_what_venv_writes() -> None:
    python = ImagePython(**PYTHON)
    assert pyvenv_cfg(python, "/v").splitlines()[0] == "home = /usr/bin"
    assert python.minor == "3.11"


def _system(*pins: tuple[str, str]) -> dict[str, NodeLock]:
    packages = [{"name": n, "version": v, "sha256": "0" * 64} for n, v in pins]
    node = NodeLock(
        name="system",
        kind=NodeKind.SYSTEM,
        key="sha256:" + "0" * 64,
        parents=("base",),
        inputs={"packages": packages},
    )
    return {"system": node}


@pytest.mark.parametrize(
    ("pins", "expected"),
    [
        (
            [("python3-minimal", "3.11.2-1+b1"), ("python3.11-minimal", "3.11.2-6+deb12u9")],
            PYTHON,
        ),
        (
            [("python3-minimal", "3.12.6-1"), ("python3.12-minimal", "3.12.6~rc1-1")],
            {**PYTHON, "executable": "/usr/bin/python3.12", "version": "3.12.6"},
        ),
        ([("python3.11-minimal", "3.11.2-6")], None),  # no `python3` on PATH
        (
            [
                ("python3-minimal", "3.11.2-1"),
                ("python3.11-minimal", "3.11.2-6"),
                ("python3.12-minimal", "3.12.1-1"),
            ],
            None,  # which one is python3?
        ),
    ],
)
def test_the_image_python_comes_from_the_apt_pins(
    pins: list[tuple[str, str]], expected: Mapping[str, str] | None
) -> None:
    assert pythons.image_python(_system(*pins)) == expected


def test_a_python_runtime_node_is_not_laid_on_the_host() -> None:
    nodes = _system(("python3-minimal", "3.11.2-1"), ("python3.11-minimal", "3.11.2-6"))
    runtime = NodeLock(
        name="runtime.python",
        kind=NodeKind.RUNTIME,
        key="sha256:" + "1" * 64,
        parents=("system",),
        inputs={"version": "3.12.7"},
    )
    assert pythons.image_python({**nodes, "runtime.python": runtime}) is None
