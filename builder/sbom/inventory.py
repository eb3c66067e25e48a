"""What an SBOM takes from sandbox.lock: every pin of every node as one `Package`.

Apt packages of base and system (`pkg:deb/debian/<name>@<version>?arch=..&distro=<suite>`;
an image base's, which dpkg lists without a .deb checksum, under its own os-release ID),
runtimes (`pkg:generic` with the archive's URL, or `pkg:pypi` for a wheel), each pip tool's
closure (one per tool venv), the npm tools' closure (`pkg:npm`, its integrity as checksum),
binary tools, and for `deps.<name>` its package manager and the project's lockfiles (the lock
pins those files, not their packages). Also what ties a document to its lock: the lock
digest and the creation time (the lock's source_date_epoch, never the wall clock).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from builder.core.keys import sha256_of
from builder.model.inputs import (
    BaseInputs,
    BootstrapBase,
    ImageBase,
    Pin,
    RuntimeInputs,
    SystemInputs,
)
from builder.model.lockfile import Lock, NodeLock, stack
from builder.model.spec import DepManager, Provider
from builder.model.toolinputs import (
    BinToolInputs,
    DepsInputs,
    NpmPackage,
    NpmToolsInputs,
    PipToolsInputs,
)

NAMESPACE = "https://sandbox-builder.dev/sbom"
ID_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")  # what SPDX IDs and bom-refs cannot hold
_SRI = {"sha1": ("SHA1", 20), "sha256": ("SHA256", 32), "sha384": ("SHA384", 48)}
_SRI["sha512"] = ("SHA512", 64)


@dataclass(frozen=True, kw_only=True)
class Package:
    """One pinned thing in one layer of the image."""

    node: str
    key: str  # the node's key
    ref: str  # unique in the document: SPDXID and bom-ref suffix
    name: str
    version: str  # "" when the pin has none (a lockfile)
    purl: str
    kind: str  # library | application | container | file
    checksums: tuple[tuple[str, str], ...]  # (SHA256, hex), ...
    url: str = ""  # where the build downloads it, when the lock says
    note: str = ""  # where in the layer, e.g. "venv of pip tool mypy"


def purl(kind: str, name: str, version: str = "", *, namespace: str = "", **qualifiers: str) -> str:
    """A package URL as the purl spec (and packageurl-python) writes it."""
    text = f"pkg:{kind}/" + (f"{_quote(namespace)}/" if namespace else "") + _quote(name)
    if version:
        text += "@" + _quote(version)
    pairs = [f"{k}={_quote(v)}" for k, v in sorted(qualifiers.items()) if v]
    return text + ("?" + "&".join(pairs) if pairs else "")


def _quote(text: str) -> str:
    return quote(text, safe="/:")


def lock_digest(nodes: Mapping[str, NodeLock]) -> str:
    """The digest the image carries as its `dev.sandbox-builder.lock` label."""
    return sha256_of({name: node.key for name, node in sorted(nodes.items())})


def creation_time(lock: Lock) -> str:
    """The documents' creation time: the lock's source_date_epoch, as ISO 8601 UTC."""
    return datetime.fromtimestamp(lock.source_date_epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def packages(nodes: Mapping[str, NodeLock], platform: str) -> list[Package]:
    """Every package of every node, nodes in image stack order, each node's sorted."""
    arch = platform.split("/")[-1]
    base = nodes["base"].inputs_as(BaseInputs) if "base" in nodes else None
    # An image base's distribution is what its os-release said at lock (resolve/image.py).
    suite, vendor = "", "debian"
    if isinstance(base, BootstrapBase):
        suite = base.bootstrap.suite
    elif isinstance(base, ImageBase) and base.os is not None:
        suite, vendor = base.os.get("codename", ""), base.os.get("id", "debian")
    found: list[Package] = []
    taken: set[str] = set()
    for name in stack(nodes):
        node = nodes[name]
        items = sorted(_node_items(node, arch=arch, suite=suite, vendor=vendor), key=lambda i: i[0])
        for ident, item in items:
            ref = ID_UNSAFE.sub("-", f"{name}-{ident}").strip("-")
            if ref in taken:  # two pins that differ only in characters IDs cannot hold
                ref += "-" + hashlib.sha256(f"{name}\0{ident}".encode()).hexdigest()[:8]
            taken.add(ref)
            found.append(Package(node=name, key=node.key, ref=ref, **item))
    return found


def _node_items(
    node: NodeLock, *, arch: str, suite: str, vendor: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(identity, Package fields) of each pin of `node`; the identity is unique in the node."""
    inputs = node.typed
    if isinstance(inputs, BaseInputs | SystemInputs):
        if isinstance(inputs, ImageBase):  # a base image, pinned by digest or local image ID
            yield from _image(inputs)
        for pin in inputs.packages or ():
            deb = _deb(pin, arch=arch, suite=suite, vendor=vendor)
            yield f"{pin.name}-{pin.version}", deb
    elif isinstance(inputs, RuntimeInputs):
        yield inputs.runtime, _runtime(inputs)
    elif isinstance(inputs, PipToolsInputs):
        for tool, closure in sorted(inputs.tools.items()):
            for pin in closure.packages:
                yield f"{tool}-{pin.name}-{pin.version}", _pypi(pin, tool)
    elif isinstance(inputs, NpmToolsInputs):
        for package in inputs.packages:
            yield package.path.replace("node_modules/", ""), _npm(package)
    elif isinstance(inputs, BinToolInputs):
        yield inputs.name, _bin(inputs)
    else:
        yield from _deps(inputs)


def _deb(pin: Pin, *, arch: str, suite: str, vendor: str) -> dict[str, Any]:
    """A Debian package; one an image base came with has no .deb sha256 (dpkg keeps none)."""
    return {
        "name": pin.name,
        "version": pin.version,
        "purl": purl("deb", pin.name, pin.version, namespace=vendor, arch=arch, distro=suite),
        "kind": "library",
        "checksums": (("SHA256", pin.sha256),) if pin.sha256 is not None else (),
    }


def _image(inputs: ImageBase) -> Iterator[tuple[str, dict[str, Any]]]:
    """A base image: by manifest digest from its registry, or by the local image ID."""
    reference, _, digest = inputs.pinned.rpartition("@")
    repo = reference or inputs.image.rsplit(":", 1)[0]
    yield (
        "image",
        {
            "name": repo,
            "version": digest,
            "purl": purl("oci", repo.rsplit("/", 1)[-1], digest, repository_url=reference),
            "kind": "container",
            "checksums": (("SHA256", digest.removeprefix("sha256:")),),
            "note": f"base image {inputs.image}",
        },
    )


def _runtime(inputs: RuntimeInputs) -> dict[str, Any]:
    url = inputs.url
    if inputs.provider is Provider.PYPI:  # the runtime is a wheel's payload
        project = urlsplit(url).path.rsplit("/", 1)[-1].split("-", 1)[0]
        ident = purl("pypi", _pep503(project), inputs.version)
    else:
        ident = purl("generic", inputs.runtime, inputs.version, download_url=url)
    return {
        "name": inputs.runtime,
        "version": inputs.version,
        "purl": ident,
        "kind": "application",
        "checksums": (("SHA256", inputs.sha256),),
        "url": url,
        "note": f"runtime {inputs.runtime} from {inputs.provider.value}",
    }


def _pypi(pin: Pin, tool: str) -> dict[str, Any]:
    return {
        "name": pin.name,
        "version": pin.version,
        "purl": purl("pypi", _pep503(pin.name), pin.version),
        "kind": "library",
        "checksums": (("SHA256", pin.sha256 or ""),),
        "note": f"venv of pip tool {tool}",
    }


def _npm(package: NpmPackage) -> dict[str, Any]:
    pin = package.fields
    name = str(pin.get("name") or package.path.rsplit("node_modules/", 1)[-1])
    scope, _, bare = name.rpartition("/")
    version = package.version or ""
    return {
        "name": name,
        "version": version,
        "purl": purl("npm", bare, version, namespace=scope),
        "kind": "library",
        "checksums": tuple(_sri(str(pin.get("integrity", "")))),
        "url": str(pin.get("resolved", "")) if "://" in str(pin.get("resolved", "")) else "",
        "note": f"npm tools: {package.path}",
    }


def _sri(integrity: str) -> Iterator[tuple[str, str]]:
    """npm's subresource-integrity strings (`sha512-<base64>`) as (algorithm, hex)."""
    for item in integrity.split():
        alg, _, b64 = item.partition("-")
        if alg not in _SRI:
            continue
        try:
            digest = base64.b64decode(b64, validate=True)
        except binascii.Error:
            continue
        name, size = _SRI[alg]
        if len(digest) == size:  # a damaged entry gives no checksum rather than a wrong one
            yield name, digest.hex()


def _bin(inputs: BinToolInputs) -> dict[str, Any]:
    url = inputs.url or ""
    return {
        "name": inputs.name,
        "version": inputs.version,
        "purl": purl("generic", inputs.name, inputs.version, download_url=url),
        "kind": "application",
        "checksums": (("SHA256", inputs.sha256),),
        "url": url,
        "note": f"binary tool from {url or (inputs.path if inputs.path is not None else '?')}",
    }


_INSTALLER_PURL = {DepManager.PNPM: "npm", DepManager.UV: "pypi"}


def _deps(inputs: DepsInputs) -> Iterator[tuple[str, dict[str, Any]]]:
    for file, sha in sorted(inputs.files.items()):
        path = f"{inputs.path}/{file}"
        yield (
            f"file-{file}",
            {
                "name": path,
                "version": "",
                "purl": purl("generic", file, checksum=f"sha256:{sha}"),
                "kind": "file",
                "checksums": (("SHA256", sha),),
                "note": f"{inputs.manager.value} project file; the packages it pins are not listed",
            },
        )
    pin, manager = inputs.installer, inputs.manager
    if pin is not None and manager in _INSTALLER_PURL:
        yield (
            manager.value,
            {
                "name": manager.value,
                "version": pin.version,
                "purl": purl(_INSTALLER_PURL[manager], manager.value, pin.version),
                "kind": "application",
                "checksums": (("SHA256", pin.sha256),),
                "url": pin.url,
                "note": f"package manager of {inputs.path}",
            },
        )


def _pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
