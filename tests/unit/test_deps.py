"""`[deps]` without Docker: what `lock_dep` pins and refuses, the env a node gives, the export.

The registries are a real HTTP server on 127.0.0.1 (the `web` fixture) serving an npm
packument for pnpm and PyPI's JSON for uv, in the shapes the real ones have.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

from builder.core.errors import BuildError, ResolutionError
from builder.image.export import deps_mounts, export_tree, stale_exports
from builder.kinds.deps import recipe
from builder.model.spec import DEP_MANAGERS, DepManager, DepMode, DepSpec, SandboxSpec
from builder.orchestrator import overlay
from builder.resolve import deps, installers
from builder.store.cache import Cache, Layer, NodeEntry
from tests.unit.conftest import Web

NODE_18 = "18.20.4+dfsg-1~deb12u1"
AMD64_TAGS = "manylinux_2_17_x86_64.manylinux2014_x86_64"
HASHED = (
    "idna==3.7 \\\n"
    "    --hash=sha256:82fee1fc78add43492d3a1898bfa6d8a904cc97d8427f683ed8e798d07761aa0\n"
    "six==1.16.0 --hash=sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254\n"
)


def project(root: Path, manager: str, files: dict[str, str], **spec: Any) -> DepSpec:
    """A project folder `root/app` holding `files`, and the DepSpec naming it."""
    folder = root / "app"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    digests = {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in DEP_MANAGERS[manager]
    }
    return DepSpec(name="app", manager=DepManager(manager), path="app", files=digests, **spec)


class FakePip:
    """A pip resolver that records what it was asked and pins each line's name at 1.0."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, requirements: str, constraints: str | None) -> list[dict[str, str]]:
        self.calls.append((requirements, constraints))
        held = dict(line.split("==") for line in (constraints or "").split())
        names = [re.split(r"[=<>~! ]", line)[0] for line in requirements.splitlines()]
        return [
            {"name": n, "version": held.get(n, f"{len(self.calls)}.0"), "sha256": "b" * 64}
            for n in sorted(names)
        ]


def lock(dep: DepSpec, root: Path, *, old: dict[str, Any] | None = None, **kw: Any) -> Any:
    return deps.lock_dep(
        dep,
        runtime_version=kw.pop("runtime", NODE_18),
        old=old,
        update=kw.pop("update", False),
        update_names=kw.pop("update_names", None),
        platform=kw.pop("platform", "linux/amd64"),
        downloads=root / "downloads",
        project_dir=root,
        resolve_pip=kw.pop("resolve_pip", FakePip()),
    )


def pnpm_project(
    root: Path, *, lockfile: str = "9.0", package: dict[str, Any] | None = None
) -> DepSpec:
    return project(
        root,
        "pnpm",
        {
            "package.json": json.dumps(package or {"name": "app"}),
            "pnpm-lock.yaml": f"lockfileVersion: '{lockfile}'\n\nimporters: {{}}\n",
        },
    )


@pytest.fixture
def npm_registry(web: Web, monkeypatch: pytest.MonkeyPatch) -> Web:
    """A pnpm packument: 8.15.9, 9.15.9, 10.1.0 (node >= 18.12), 10.2.0 (node >= 20), a beta."""
    monkeypatch.setattr(installers, "NPM_REGISTRY", web.url)
    versions = {}
    for version, node in [
        ("8.15.9", ">=16.14"),
        ("9.15.9", ">=18.12"),
        ("10.1.0", ">=18.12"),
        ("10.2.0", ">=20"),
        ("10.3.0-beta.1", ">=18.12"),
        ("12.0.0", ">=18"),
    ]:
        tarball = f"pnpm-{version}.tgz".encode()  # not a real tarball: lock only hashes it
        url = web.put(f"pnpm/-/pnpm-{version}.tgz", tarball)
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
        cli = "pnpm" if version.startswith("12") else "bin/pnpm.cjs"
        versions[version] = {
            "version": version,
            "bin": {"pnpm": cli},
            "engines": {"node": node},
            "dist": {"tarball": url, "integrity": integrity},
        }
    web.put("pnpm/index.json", json.dumps({"name": "pnpm", "versions": versions}))
    web.redirects["/pnpm"] = "/pnpm/index.json"
    return web


# -- pnpm --------------------------------------------------------------------------------------


def test_pnpm_is_the_newest_of_the_lockfiles_majors_that_runs_on_the_node(
    npm_registry: Web, tmp_path: Path
) -> None:
    inputs = lock(pnpm_project(tmp_path), tmp_path)
    pin = inputs["pnpm"]
    assert pin["version"] == "10.1.0", "10.2.0 needs node 20, the beta is no release"
    assert pin["url"].endswith("/pnpm-10.1.0.tgz")
    assert pin["sha256"] == hashlib.sha256(b"pnpm-10.1.0.tgz").hexdigest()
    assert pin["bin"] == "bin/pnpm.cjs"
    assert inputs["manager"] == "pnpm"
    assert inputs["runtime"] == NODE_18
    assert set(inputs["files"]) == {"package.json", "pnpm-lock.yaml"}

    on_node_22 = lock(pnpm_project(tmp_path), tmp_path, runtime="22.3.0")
    assert on_node_22["pnpm"]["version"] == "10.2.0"
    older = lock(pnpm_project(tmp_path, lockfile="6.0"), tmp_path)
    assert older["pnpm"]["version"] == "8.15.9"


def test_package_manager_pins_pnpm_exactly_and_its_hash_is_checked(
    npm_registry: Web, tmp_path: Path
) -> None:
    sha512 = hashlib.sha512(b"pnpm-9.15.9.tgz").hexdigest()
    pinned = pnpm_project(tmp_path, package={"packageManager": f"pnpm@9.15.9+sha512.{sha512}"})
    assert lock(pinned, tmp_path)["pnpm"]["version"] == "9.15.9"

    wrong = pnpm_project(tmp_path, package={"packageManager": f"pnpm@9.15.9+sha512.{'0' * 128}"})
    with pytest.raises(ResolutionError, match="does not match the sha512"):
        lock(wrong, tmp_path)


@pytest.mark.parametrize(
    ("package", "lockfile", "problem"),
    [
        ({"packageManager": "yarn@4.1.0"}, "9.0", "packageManager is 'yarn@4.1.0'"),
        ({}, "10.0", "lockfileVersion 10.0 is not one pnpm"),
        ({"packageManager": "pnpm@12.0.0"}, "9.0", "pnpm 12.0.0 is not a JavaScript CLI"),
        ({"packageManager": "pnpm@7.0.0"}, "9.0", "pnpm 7.0.0, which the npm registry lacks"),
    ],
)
def test_a_pnpm_it_cannot_choose_or_run_is_a_clear_error(
    npm_registry: Web, tmp_path: Path, package: dict[str, Any], lockfile: str, problem: str
) -> None:
    with pytest.raises(ResolutionError, match=problem) as caught:
        lock(pnpm_project(tmp_path, lockfile=lockfile, package=package), tmp_path)
    assert "packageManager" in str(caught.value) or "registry" in str(caught.value)


def test_relocking_keeps_the_pnpm_pin_until_the_request_changes_or_update(
    npm_registry: Web, tmp_path: Path
) -> None:
    first = lock(pnpm_project(tmp_path), tmp_path)
    old = {**first, "pnpm": {**first["pnpm"], "version": "10.0.0-kept"}}
    assert lock(pnpm_project(tmp_path), tmp_path, old=old)["pnpm"]["version"] == "10.0.0-kept"
    updated = lock(pnpm_project(tmp_path), tmp_path, old=old, update=True)
    assert updated["pnpm"]["version"] == "10.1.0"
    moved = lock(pnpm_project(tmp_path, lockfile="6.0"), tmp_path, old=old)
    assert moved["pnpm"]["version"] == "8.15.9"


# -- pip, uv, modes ----------------------------------------------------------------------------


def test_hashed_requirements_lock_without_any_tool_pin(tmp_path: Path) -> None:
    dep = project(tmp_path, "pip", {"requirements.txt": "--index-url https://x/simple\n" + HASHED})
    inputs = lock(dep, tmp_path, runtime="3.11.2-1+b1")
    assert inputs == {
        "manager": "pip",
        "mode": "store",
        "path": "app",
        "files": dep.files,
        "runtime": "3.11.2-1+b1",
    }


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("requests==2.32.3", "requests==2.32.3"),
        ("requests>=2 --hash=sha256:" + "a" * 64, "requests>=2"),
        ("-e ./lib", "-e ./lib"),
    ],
)
def test_hashes_on_some_lines_only_are_refused(tmp_path: Path, line: str, shown: str) -> None:
    dep = project(tmp_path, "pip", {"requirements.txt": HASHED + line + "  # a comment\n"})
    with pytest.raises(ResolutionError) as caught:
        lock(dep, tmp_path)
    message = str(caught.value)
    assert message.startswith("app/requirements.txt: 1 requirement(s) have no --hash")
    assert shown in message
    assert "let `sandbox lock` pin the closure" in message


PLAIN = "numpy==2.2.6\npandas>=2.2  # ranges too\n"


def test_plain_requirements_are_resolved_and_their_closure_pinned(tmp_path: Path) -> None:
    dep = project(tmp_path, "pip", {"requirements.txt": PLAIN}, mode="install")
    pip = FakePip()
    inputs = lock(dep, tmp_path, runtime="3.11.2-1+b1", resolve_pip=pip)
    assert pip.calls == [(PLAIN, None)]
    assert inputs["requires"] == ["numpy", "pandas"]
    assert [(p["name"], p["version"]) for p in inputs["pins"]] == [
        ("numpy", "1.0"),
        ("pandas", "1.0"),
    ]
    again = FakePip()
    assert lock(dep, tmp_path, runtime="3.11.2-1+b1", old=inputs, resolve_pip=again) == inputs
    assert again.calls == []  # same file, same python: the pins are kept


def test_update_of_one_package_holds_the_other_pins(tmp_path: Path) -> None:
    dep = project(tmp_path, "pip", {"requirements.txt": PLAIN}, mode="install")
    first = lock(dep, tmp_path, resolve_pip=FakePip())
    pip = FakePip()
    pip.calls.append(("", None))  # this resolver pins what moves at 2.0
    moved = lock(dep, tmp_path, old=first, update_names=["NumPy"], resolve_pip=pip)
    assert pip.calls[-1] == (PLAIN, "pandas==1.0\n")
    assert {p["name"]: p["version"] for p in moved["pins"]} == {"numpy": "2.0", "pandas": "1.0"}
    everything = FakePip()
    lock(dep, tmp_path, old=first, update=True, update_names=[], resolve_pip=everything)
    assert everything.calls == [(PLAIN, None)]


def test_an_included_requirements_file_is_refused(tmp_path: Path) -> None:
    dep = project(tmp_path, "pip", {"requirements.txt": "-r base.txt\n" + HASHED})
    with pytest.raises(ResolutionError, match=r"`-r base\.txt` includes another file"):
        lock(dep, tmp_path)


def test_mount_mode_needs_a_mount_path(tmp_path: Path) -> None:
    dep = project(tmp_path, "pip", {"requirements.txt": HASHED}, mode="mount")
    with pytest.raises(ResolutionError, match=r'\[deps.app\] mode = "mount" needs `mount`'):
        lock(dep, tmp_path)
    with_mount = project(
        tmp_path, "pip", {"requirements.txt": HASHED}, mode="mount", mount="/workspace/.venv"
    )
    assert lock(with_mount, tmp_path)["mount"] == "/workspace/.venv"


def test_a_file_changed_after_the_spec_was_read_is_caught(tmp_path: Path) -> None:
    dep = project(tmp_path, "pip", {"requirements.txt": HASHED})
    (tmp_path / "app" / "requirements.txt").write_text(HASHED + "\n")
    with pytest.raises(ResolutionError, match="changed"):
        lock(dep, tmp_path)


def uv_release(web: Web, version: str) -> list[dict[str, Any]]:
    names = [
        f"uv-{version}-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        f"uv-{version}-py3-none-musllinux_1_1_x86_64.whl",
        f"uv-{version}-py3-none-manylinux_2_28_aarch64.whl",
        f"uv-{version}.tar.gz",
    ]
    return [
        {"filename": n, "url": f"../../packages/{n}", "digests": {"sha256": n[:8] * 8}}
        for n in names
    ]


@pytest.fixture
def pypi(web: Web, monkeypatch: pytest.MonkeyPatch) -> Web:
    monkeypatch.setattr(installers, "PYPI", web.url)
    index = {
        "info": {"version": "0.5.2"},
        "releases": {v: uv_release(web, v) for v in ("0.4.0", "0.5.2")},
    }
    web.put("pypi/uv/json", json.dumps(index))
    return web


def test_uv_is_the_manylinux_wheel_of_the_platform(pypi: Web, tmp_path: Path) -> None:
    files = {"pyproject.toml": "[project]\nname = 'app'\n", "uv.lock": "version = 1\n"}
    inputs = lock(project(tmp_path, "uv", files), tmp_path)
    assert inputs["uv"] == {
        "version": "0.5.2",
        "url": f"{pypi.url}/packages/uv-0.5.2-py3-none-{AMD64_TAGS}.whl",
        "sha256": "uv-0.5.2" * 8,
        "requested": "newest",
    }
    arm = lock(project(tmp_path, "uv", files), tmp_path, platform="linux/arm64")
    assert "manylinux_2_28_aarch64" in arm["uv"]["url"]

    files["pyproject.toml"] += "[tool.uv]\nrequired-version = '==0.4.0'\n"
    pinned = lock(project(tmp_path, "uv", files), tmp_path)
    assert pinned["uv"]["version"] == "0.4.0"
    assert pinned["uv"]["requested"] == "required-version ==0.4.0"


# -- what the image gets ----------------------------------------------------------------------


def test_each_mode_puts_its_tree_or_store_on_the_env() -> None:
    prefix = "/opt/sandbox/deps/web"
    assert recipe._env("pnpm", prefix, mode="install") == {
        "NODE_PATH": f"{prefix}/node_modules",
        "PATH": f"{prefix}/node_modules/.bin:{prefix}/bin",
    }
    store = recipe._env("pnpm", prefix, mode="store")
    assert store["PATH"] == f"{prefix}/bin"
    assert store["npm_config_store_dir"] == store["pnpm_config_store_dir"] == f"{prefix}/store"
    assert recipe._env("pip", prefix, mode="mount") == {
        "VIRTUAL_ENV": f"{prefix}/venv",
        "PATH": f"{prefix}/venv/bin",
    }
    assert recipe._env("pip", prefix, mode="store") == {"PIP_FIND_LINKS": f"{prefix}/wheels"}
    assert recipe._env("uv", prefix, mode="store")["UV_CACHE_DIR"] == (f"{prefix}/uv-cache")


# -- export ------------------------------------------------------------------------------------

PREFIX = "opt/sandbox/deps/web"


def layer(cache: Cache, members: list[tuple[str, str, str]]) -> Layer:
    """A layer tar of (name, kind, data-or-target) members, stored in `cache`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, value
                tar.addfile(info)
            else:
                info.size, info.mode = len(value), 0o755 if kind == "exe" else 0o644
                tar.addfile(info, io.BytesIO(value.encode()))
    data = buffer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    cache.layer_path(diff_id).write_bytes(data)
    return Layer(diff_id=diff_id, size=len(data))


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    return cache


def test_export_extracts_only_the_tree_with_links_intact(cache: Cache) -> None:
    tree = f"{PREFIX}/node_modules"
    entry = NodeEntry(
        name="deps.web",
        key="sha256:" + "ab" * 32,
        layers=(
            layer(
                cache,
                [
                    (f"{PREFIX}/bin/pnpm", "exe", "#!/bin/sh\n"),
                    (f"{PREFIX}/store/file", "file", "shared data"),
                    (tree, "dir", ""),
                    (f"{tree}/.bin", "dir", ""),
                    (f"{tree}/.pnpm/is-odd/index.js", "file", "module.exports = 1\n"),
                    (f"{tree}/.bin/is-odd", "exe", "#!/bin/sh\n"),
                    (f"{tree}/is-odd", "sym", ".pnpm/is-odd"),
                    (f"{tree}/python", "sym", "/usr/bin/python3"),
                    (f"{tree}/copy.js", "hard", f"{tree}/.pnpm/is-odd/index.js"),
                    (f"{tree}/from-store", "hard", f"{PREFIX}/store/file"),
                ],
            ),
        ),
    )
    dest = export_tree(cache, entry=entry, name="web", tree="node_modules")
    assert dest == cache.root / "deps" / "web" / ("ab" * 6)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        ".bin",
        ".bin/is-odd",
        ".pnpm",
        ".pnpm/is-odd",
        ".pnpm/is-odd/index.js",
        "copy.js",
        "from-store",
        "is-odd",
        "python",
    ]
    assert (dest / "is-odd").readlink() == Path(".pnpm/is-odd")
    assert (dest / "python").readlink() == Path("/usr/bin/python3"), "resolved in the container"
    assert (dest / "copy.js").read_text() == "module.exports = 1\n"
    assert (dest / "from-store").read_text() == "shared data"
    assert (dest / ".bin" / "is-odd").stat().st_mode & 0o111
    assert not list((cache.root / "tmp").iterdir()), "no scratch left behind"

    (dest / "marker").write_text("kept")
    assert export_tree(cache, entry=entry, name="web", tree="node_modules") == dest
    assert (dest / "marker").exists(), "an exported key is reused, not extracted again"


def test_export_of_a_layer_without_the_tree_says_why(cache: Cache) -> None:
    entry = NodeEntry(
        name="deps.web",
        key="sha256:" + "cd" * 32,
        layers=(layer(cache, [(f"{PREFIX}/store/file", "file", "x")]),),
    )
    with pytest.raises(BuildError, match="holds no /opt/sandbox/deps/web/node_modules"):
        export_tree(cache, entry=entry, name="web", tree="node_modules")
    assert not (cache.root / "deps" / "web" / ("cd" * 6)).exists()


def test_mounted_deps_become_read_only_extra_mounts(cache: Cache) -> None:
    tree = f"{PREFIX}/venv"
    entry = NodeEntry(
        name="deps.web",
        key="sha256:" + "ef" * 32,
        layers=(layer(cache, [(f"{tree}/bin/python", "sym", "/usr/bin/python3")]),),
    )
    web = DepSpec(
        name="web", manager=DepManager.UV, path="web", mode=DepMode.MOUNT, mount="/workspace/.venv"
    )
    other = DepSpec(name="other", manager=DepManager.NPM, path="other", mode=DepMode.INSTALL)
    mounts = deps_mounts(deps=[web, other], entries={"deps.web": entry}, cache=cache)
    host = cache.root / "deps" / "web" / ("ef" * 6)
    assert mounts == [f"{host}:/workspace/.venv:ro"]
    sandbox = SandboxSpec(extra_mounts=("/srv/cache:/home/agent/.cache:ro",))
    made = overlay.make_overlay(image_ref="sha256:" + "0" * 64, sandbox=sandbox, deps_mounts=mounts)
    assert made["codex"]["sandbox"]["extra_mounts"] == [
        "/srv/cache:/home/agent/.cache:ro",
        f"{host}:/workspace/.venv:ro",
    ]


def test_gc_may_drop_exports_of_keys_no_lock_names(cache: Cache) -> None:
    current, old = "sha256:" + "12" * 32, "sha256:" + "34" * 32
    for key in (current, old):
        (cache.root / "deps" / "web" / key[7:19]).mkdir(parents=True)
    assert stale_exports(cache, {current}) == [cache.root / "deps" / "web" / old[7:19]]
