"""`sandbox outdated`: version ordering, range matching, and the comparison of every pin kind
against recording fakes of its sources (apt-cache madison output, PyPI JSON, npm metadata)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builder.lock.outdated import (
    NPM,
    PYPI,
    Pin,
    Report,
    Sources,
    gather,
    npm_url,
    security_updates,
)
from builder.model.lockfile import NodeKind, NodeLock
from builder.model.spec import BaseSpec, Bootstrap, ImageSpec, RuntimeSpec, Spec, ToolsSpec
from builder.resolve.madison import parse_madison
from builder.resolve.versions import (
    debian_compare,
    debian_newest,
    npm_max_satisfying,
    pypi_allowed,
    pypi_newest,
)

DEBIAN = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"


def _madison(name: str, version: str, suite: str, what: str = "amd64 Packages") -> str:
    mirror = SECURITY if suite.endswith("-security") else DEBIAN
    return f"{name:>10} | {version} | {mirror} {suite}/main {what}"


MADISON = "\n".join(
    [
        _madison("openssl", "3.0.22-1~deb12u2", "bookworm-security"),
        _madison("openssl", "3.0.20-1~deb12u2", "bookworm"),
        _madison("openssl", "3.0.17-1~deb12u2", "bookworm-updates"),
        _madison("libssl3", "3.0.22-1~deb12u2", "bookworm-security"),
        _madison("libssl3", "3.0.20-1~deb12u2", "bookworm"),
        _madison("curl", "7.88.1-10+deb12u15", "bookworm"),
        _madison("curl", "7.88.1-10+deb12u5", "bookworm-security"),
        _madison("curl", "7.88.1-10+deb12u5", "bookworm", "Sources"),
        _madison("apt", "2.6.2", "bookworm-security"),
        _madison("apt", "2.6.1", "bookworm"),
        _madison("jq", "1.6-2.1+deb12u3", "bookworm-security"),
        _madison("jq", "1.6-2.1+deb12u3", "bookworm-updates"),
        _madison("jq", "1.6-2.1+deb12u2", "bookworm"),
        "N: Unable to locate package nosuch",
    ]
)


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("1.0", "1.0-1"),
        ("1.0~rc1", "1.0"),
        ("3.0.20-1~deb12u2", "3.0.22-1~deb12u2"),
        ("7.88.1-10+deb12u5", "7.88.1-10+deb12u15"),
        ("1.6-2.1+deb12u2", "1.6-2.1+deb12u3"),
        ("9.9", "1:0.1"),
        ("2.36-9+deb12u7", "2.36-9+deb12u14"),
        ("1.0a", "1.0b"),
        ("1.0", "1.0a"),
        ("1.0+b1", "1.0.1"),
    ],
)
def test_debian_versions_order_as_dpkg_does(older: str, newer: str) -> None:
    assert debian_compare(older, newer) < 0
    assert debian_compare(newer, older) > 0
    assert debian_compare(newer, newer) == 0


def test_debian_newest_picks_by_version_not_text() -> None:
    assert debian_newest(["7.88.1-10+deb12u5", "7.88.1-10+deb12u15"]) == "7.88.1-10+deb12u15"
    assert debian_newest([]) == ""


def test_madison_output_gives_each_version_its_suites() -> None:
    offers = parse_madison(MADISON)
    assert set(offers) == {"openssl", "libssl3", "curl", "apt", "jq"}
    jq = {o.version: o for o in offers["jq"]}
    assert jq["1.6-2.1+deb12u3"].suites == {"bookworm-security", "bookworm-updates"}
    assert jq["1.6-2.1+deb12u3"].security
    assert not jq["1.6-2.1+deb12u2"].security
    # the Sources line is not a binary package offer
    assert {o.version for o in offers["curl"]} == {"7.88.1-10+deb12u15", "7.88.1-10+deb12u5"}
    assert not next(o for o in offers["curl"] if o.version == "7.88.1-10+deb12u5").suites & {
        "bookworm"
    }


NPM_VERSIONS = [
    "4.9.5",
    "5.0.2",
    "5.4.5",
    "5.6.3",
    "5.7.0-beta",
    "6.0.0-dev.1",
    "0.2.3",
    "0.2.9",
    "0.3.0",
    "0.0.3",
    "0.0.4",
]


@pytest.mark.parametrize(
    ("spec_range", "expected"),
    [
        ("5", "5.6.3"),
        ("^5.0.0", "5.6.3"),
        ("~5.4.0", "5.4.5"),
        ("5.4.x", "5.4.5"),
        ("5.x", "5.6.3"),
        ("*", "5.6.3"),
        ("", "5.6.3"),
        ("5.0.2", "5.0.2"),
        ("=4.9.5", "4.9.5"),
        ("^0.2.3", "0.2.9"),
        ("^0.0.3", "0.0.3"),
        (">=5.0.0 <5.5", "5.4.5"),
        ("^4 || ^5.4", "5.6.3"),
        ("5.7.0-beta", "5.7.0-beta"),
        ("^7", ""),
    ],
)
def test_npm_ranges_match_like_npm(spec_range: str, expected: str) -> None:
    assert npm_max_satisfying(NPM_VERSIONS, spec_range) == expected


def test_npm_range_forms_it_does_not_know_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        npm_max_satisfying(NPM_VERSIONS, "next")


def test_pypi_specifiers_and_prereleases() -> None:
    versions = ["0.5.9", "0.6.0", "0.6.9", "0.7.0", "0.8.0rc1", "bogus"]
    assert pypi_allowed("ruff==0.6.*", versions) == "0.6.9"
    assert pypi_allowed("ruff", versions) == "0.7.0"
    assert pypi_allowed("ruff>=1", versions) == ""
    assert pypi_newest(versions) == "0.7.0"


# -- the comparison, against recording fakes ---------------------------------------------------


class FakeSources:
    """Answers from canned documents and records every question asked."""

    def __init__(self, *, madison: str = "", docs: dict[str, Any] | None = None) -> None:
        self.madison_text = madison
        self.docs = docs or {}
        self.asked: list[str] = []
        self.runtimes: dict[str, tuple[str, str]] = {}
        self.images: dict[str, str] = {}

    def sources(self) -> Sources:
        return Sources(
            madison=self._madison,
            get_json=self._get_json,
            image_pin=lambda ref: self.images[ref],
            runtime=lambda r: self.runtimes[r.name],
        )

    def _madison(self, names: list[str]) -> str:
        self.asked.append("madison " + " ".join(names))
        return self.madison_text

    def _get_json(self, url: str) -> Any:
        self.asked.append(url)
        return self.docs[url]


def _spec(**kwargs: Any) -> Spec:
    return Spec(
        path=Path("/p/sandbox.toml"),
        image=ImageSpec(name="t/x"),
        base=BaseSpec(bootstrap=Bootstrap(suite="bookworm")),
        **kwargs,
    )


BOOT = {"suite": "bookworm", "mirror": "http://deb.debian.org/debian", "variant": "minbase"}
# What the lock holds beside the pins a test looks at, by node (tools.bin.*: "tools.bin").
SHAPES: dict[str, dict[str, Any]] = {
    "system": {"request": [], "user": "agent", "uid": 1000, "workdir": "/w", "packages": []},
    "runtime": {
        **{"runtime": "node", "provider": "pypi", "request": "22", "url": "u", "sha256": "0"},
        "format": "zip",
        "root": "",
        "requested": {"provider": "pypi", "version": "22", "mirror": ""},
    },
    "tools.pip": {"python": "3.11.2", "tools": {}},
    "tools.npm": {"node": "22.12.0", "tools": [], "packages": []},
    "tools.bin": {"name": "kubectl", "url": "u", "sha256": "0", "format": "raw", "bin": "k"},
}
BIN_REQUEST = {"url": "u", "path": "", "bin": "k", "auth_env": ""}


def _nodes(**inputs: dict[str, Any]) -> dict[str, NodeLock]:
    """Locked nodes by name (`tools__pip` is tools.pip), in the given order."""
    nodes: dict[str, NodeLock] = {}
    for key, given in inputs.items():
        name = key.replace("__", ".")
        shape = name if name in SHAPES else name.rsplit(".", 1)[0]
        node_inputs = {**SHAPES.get(shape, {}), **given}
        if shape == "tools.bin":
            node_inputs["requested"] = {**BIN_REQUEST, **given["requested"]}
        nodes[name] = NodeLock(
            name=name,
            kind=NodeKind(name if name in ("base", "system") else name.split(".")[0]),
            key=f"sha256:{name}",
            parents=() if name == "base" else ("base",),
            inputs=node_inputs,
        )
    return nodes


def _deb(name: str, version: str) -> dict[str, str]:
    return {"name": name, "version": version, "sha256": "0" * 64}


def test_apt_pins_get_newer_versions_and_security_flags() -> None:
    fake = FakeSources(madison=MADISON)
    nodes = _nodes(
        base={"bootstrap": BOOT, "packages": [_deb("apt", "2.6.1"), _deb("jq", "1.6-2.1+deb12u2")]},
        system={
            "request": ["curl", "jq", "openssl"],
            "packages": [
                _deb("curl", "7.88.1-10+deb12u5"),
                _deb("jq", "1.6-2.1+deb12u3"),
                _deb("libssl3", "3.0.20-1~deb12u2"),
                _deb("openssl", "3.0.20-1~deb12u2"),
            ],
        },
    )
    spec = _spec(system_packages=("curl", "jq", "openssl"))
    pins = {(p.node, p.package): p for p in gather(spec=spec, nodes=nodes, sources=fake.sources())}

    assert fake.asked == ["madison apt curl jq libssl3 openssl"]
    # jq: the system layer's pin is the one in the image, not the base's older one
    assert ("base", "jq") not in pins
    assert not pins[("system", "jq")].update
    openssl = pins[("system", "openssl")]
    assert (openssl.locked, openssl.allowed, openssl.latest) == (
        "3.0.20-1~deb12u2",
        "3.0.22-1~deb12u2",
        "3.0.22-1~deb12u2",
    )
    assert openssl.update
    assert openssl.security
    # curl's newer version is a point release, not a security fix
    assert pins[("system", "curl")].update
    assert not pins[("system", "curl")].security
    assert pins[("base", "apt")].security
    assert security_updates(pins.values()) == ["apt", "libssl3", "openssl"]


def test_an_apt_version_glob_bounds_allowed() -> None:
    fake = FakeSources(madison=MADISON)
    nodes = _nodes(
        base={"bootstrap": BOOT, "packages": []},
        system={"packages": [_deb("openssl", "3.0.17-1~deb12u2")]},
    )
    spec = _spec(system_packages=("openssl=3.0.20*",))
    (pin,) = gather(spec=spec, nodes=nodes, sources=fake.sources())
    assert (pin.allowed, pin.latest) == ("3.0.20-1~deb12u2", "3.0.22-1~deb12u2")
    assert pin.update
    # the only security version is past what the spec allows
    assert not pin.security


def _pypi_doc(*versions: str, yanked: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "releases": {v: [{"filename": f"x-{v}.whl", "yanked": v in yanked}] for v in versions}
        | {"9.9.9": []}
    }


def test_pip_tools_and_their_closures() -> None:
    docs = {
        PYPI.format(name="ruff"): _pypi_doc("0.6.8", "0.6.9", "0.7.1", "0.7.2", yanked=("0.7.2",)),
        PYPI.format(name="mypy"): _pypi_doc("1.11.0", "1.13.0"),
        PYPI.format(name="typing-extensions"): _pypi_doc("4.12.2", "4.13.0rc1"),
    }
    fake = FakeSources(docs=docs)
    nodes = _nodes(
        base={"bootstrap": BOOT, "packages": []},
        tools__pip={
            "python": "3.12.7",
            "tools": {
                "mypy": {
                    "requirement": "mypy",
                    "packages": [_deb("mypy", "1.11.0"), _deb("typing-extensions", "4.12.2")],
                },
                "ruff": {"requirement": "ruff==0.6.*", "packages": [_deb("ruff", "0.6.8")]},
            },
        },
    )
    spec = _spec(tools=ToolsSpec(pip=("ruff==0.6.*", "mypy")))
    pins = {p.package: p for p in gather(spec=spec, nodes=nodes, sources=fake.sources())}
    assert sorted(fake.asked) == sorted(docs)
    assert (pins["ruff"].allowed, pins["ruff"].latest) == ("0.6.9", "0.7.1")
    assert (pins["mypy"].allowed, pins["mypy"].latest) == ("1.13.0", "1.13.0")
    extensions = pins["typing-extensions"]
    assert (extensions.allowed, extensions.latest, extensions.update) == ("", "4.12.2", False)
    assert all(p.kind == "pypi" and not p.security for p in pins.values())


def test_npm_tools_and_their_closures() -> None:
    def doc(latest: str, *versions: str) -> dict[str, Any]:
        return {"dist-tags": {"latest": latest}, "versions": {v: {} for v in versions}}

    docs = {
        npm_url("typescript"): doc("5.6.3", "5.4.5", "5.6.3", "5.7.0-beta"),
        npm_url("@vercel/ncc"): doc("0.38.3", "0.38.1", "0.38.3"),
        npm_url("left-pad"): doc("1.3.0", "1.1.0", "1.3.0"),
    }
    assert npm_url("@vercel/ncc") == NPM.format(name="@vercel%2Fncc")
    fake = FakeSources(docs=docs)
    nodes = _nodes(
        base={"bootstrap": BOOT, "packages": []},
        tools__npm={
            "node": "22.11.0",
            "tools": ["typescript@~5.4", "@vercel/ncc"],
            "packages": [
                {"path": "node_modules/typescript", "version": "5.4.5"},
                {"path": "node_modules/@vercel/ncc", "version": "0.38.1"},
                {"path": "node_modules/@vercel/ncc/node_modules/left-pad", "version": "1.1.0"},
            ],
        },
    )
    spec = _spec(tools=ToolsSpec(npm=("typescript@~5.4", "@vercel/ncc")))
    pins = {p.package: p for p in gather(spec=spec, nodes=nodes, sources=fake.sources())}
    assert sorted(fake.asked) == sorted(docs)
    assert (pins["typescript"].allowed, pins["typescript"].latest) == ("5.4.5", "5.6.3")
    assert pins["typescript"].update  # a newer one exists, outside the spec's range
    assert (pins["@vercel/ncc"].allowed, pins["@vercel/ncc"].update) == ("0.38.3", True)
    assert (pins["left-pad"].allowed, pins["left-pad"].latest) == ("", "1.3.0")


def test_runtimes_base_image_and_binaries() -> None:
    fake = FakeSources()
    fake.runtimes = {"node": ("22.12.0", "23.4.0")}
    fake.images = {"127.0.0.1:5000/debian:bookworm": "127.0.0.1:5000/debian@sha256:new"}
    nodes = _nodes(
        base={
            "image": "127.0.0.1:5000/debian:bookworm",
            "pinned": "127.0.0.1:5000/debian@sha256:old",
        },
        runtime__node={"version": "22.11.0"},
        tools__bin__kubectl={"version": "1.31.0", "requested": {"version": "1.31.0"}},
    )
    spec = Spec(
        path=Path("/p/sandbox.toml"),
        image=ImageSpec(name="t/x"),
        base=BaseSpec(image="127.0.0.1:5000/debian:bookworm"),
        runtimes=(RuntimeSpec(name="node", version="22"),),
    )
    pins = gather(spec=spec, nodes=nodes, sources=fake.sources())
    assert [(p.node, p.kind, p.allowed, p.update) for p in pins] == [
        ("base", "base", "127.0.0.1:5000/debian@sha256:new", True),
        ("runtime.node", "runtime", "22.12.0", True),
        ("tools.bin.kubectl", "bin", "1.31.0", False),
    ]


def test_report_shows_updates_by_default_and_every_pin_with_all() -> None:
    pins = [
        Pin(node="system", package="curl", kind="deb", locked="1", allowed="1", latest="1"),
        Pin(
            node="system",
            package="openssl",
            kind="deb",
            locked="3.0.20",
            allowed="3.0.22",
            latest="3.0.22",
            security=True,
            update=True,
        ),
    ]
    report = Report(pins=pins)
    assert report.to_json(every=False) == {
        "updates": [pins[1].to_json()],
        "security": 1,
    }
    assert len(report.to_json(every=True)["updates"]) == 2
    table = report.table(every=False).splitlines()
    assert table[0].split() == ["NODE", "PACKAGE", "LOCKED", "ALLOWED", "LATEST", "SECURITY"]
    assert table[1].split() == ["system", "openssl", "3.0.20", "3.0.22", "3.0.22", "security"]
    assert len(table) == 2
    assert "1 of 2 pins have updates, 1 of them security" in report.summary()
    assert Report(pins=pins[:1]).summary() == "all 1 pins are current"
    assert Report(pins=pins[:1]).table(every=False) == ""
