"""What lock reads of an image base (builder/resolve/image.py), and what it does with it.

The probe's output is given as the script prints it on Debian, Ubuntu (whose mirrors are not
reachable here, so this is the part of the Ubuntu path that can be tested) and Alpine; the
engine is a small recording fake. Then the system request and the apt runtimes' versions
against the base's packages and programs (builder/resolve/apt.py, builder/kinds/base.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builder.core.errors import ResolutionError
from builder.kinds.rules import check_apt_runtimes
from builder.model.spec import BaseSpec, ImageSpec, Provider, RuntimeSpec, Spec, ToolsSpec
from builder.resolve.apt import system_request
from builder.resolve.image import BaseFacts, describe_image, parse_probe, recorded_config
from tests.unit.fake_engine import FakeEngine, Run

PASSWD = "root:x:0:0:root:/root:/bin/bash\nnode:x:1000:1000::/home/node:/bin/bash\n"
DEBIAN = f"""@@os
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
ID=debian
VERSION_ID="12"
VERSION_CODENAME=bookworm
@@tools
dpkg-query
apt-get
@@dpkg
installed bash 5.2.15-2+b7
installed python3 3.11.2-1+b1
not-installed python3-venv 3.11.2-1+b1
config-files oldlib 1.0
@@users
{PASSWD}@@programs
python3 /usr/bin/python3 Python 3.11.2
node /usr/local/bin/node v22.12.0
npm /usr/local/bin/npm 10.9.0
@@end
"""
UBUNTU = """@@os
PRETTY_NAME="Ubuntu 24.04.1 LTS"
ID=ubuntu
ID_LIKE=debian
VERSION_ID="24.04"
VERSION_CODENAME=noble
@@tools
dpkg-query
apt-get
@@dpkg
installed python3 3.12.3-0ubuntu2
@@users
root:x:0:0:root:/root:/bin/bash
ubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash
@@programs
python3 /usr/bin/python3 Python 3.12.3
@@end
"""
ALPINE = """@@os
PRETTY_NAME="Alpine Linux v3.20"
ID=alpine
@@tools
apk
@@dpkg
@@users
root:x:0:0:root:/root:/bin/ash
@@programs
@@end
"""


def test_a_debian_base_gives_its_distribution_packages_users_and_programs() -> None:
    facts = parse_probe(DEBIAN, image="risoluto-codex:latest")

    assert facts["os"] == {"id": "debian", "version_id": "12", "codename": "bookworm"}
    assert facts["packages"] == [
        {"name": "bash", "version": "5.2.15-2+b7"},
        {"name": "python3", "version": "3.11.2-1+b1"},
    ], "only what dpkg has installed counts"
    assert facts["users"] == [{"name": "root", "uid": 0}, {"name": "node", "uid": 1000}]
    assert facts["programs"] == {
        "python3": {"path": "/usr/bin/python3", "version": "3.11.2"},
        "node": {"path": "/usr/local/bin/node", "version": "22.12.0"},
        "npm": {"path": "/usr/local/bin/npm", "version": "10.9.0"},
    }


def test_an_ubuntu_base_takes_the_same_apt_path() -> None:
    facts = parse_probe(UBUNTU, image="ubuntu:24.04")

    assert facts["os"] == {"id": "ubuntu", "version_id": "24.04", "codename": "noble"}
    base = BaseFacts.of(facts)
    spec = _spec(
        pip=("ruff",), runtimes=(RuntimeSpec(name="python", version="3.12", provider=Provider.APT),)
    )
    assert system_request(spec, base) == ["jq", "python3-venv"]
    check_apt_runtimes(spec, [], base=base.packages)  # Ubuntu's 3.12.3-0ubuntu2 is 3.12


def test_an_alpine_base_is_refused_naming_it_and_what_is_supported() -> None:
    with pytest.raises(ResolutionError) as caught:
        parse_probe(ALPINE, image="alpine:3.20")

    message = str(caught.value)
    assert message.startswith(
        "base image alpine:3.20 (Alpine Linux v3.20) cannot be extended: it has no dpkg and "
        "apt-get (it has apk)."
    )
    assert "Debian and Ubuntu based images" in message
    assert "bootstrap = {" in message
    assert caught.value.exit_code == 4


def test_the_recorded_config_leaves_out_empty_fields_and_sorts_sets() -> None:
    raw: dict[str, Any] = {
        "Entrypoint": None,
        "Cmd": ["bash", "-l"],
        "Env": ["PATH=/bin"],
        "Labels": {"b": "2", "a": "1"},
        "User": "",
        "Volumes": {"/z": {}, "/a": {}},
        "ExposedPorts": {"4000/tcp": {}},
        "Hostname": "abc123",
        "OnBuild": None,
    }

    assert recorded_config(raw) == {
        "Cmd": ["bash", "-l"],
        "Env": ["PATH=/bin"],
        "Labels": {"a": "1", "b": "2"},
        "Volumes": ["/a", "/z"],
        "ExposedPorts": ["4000/tcp"],
    }


def _engine(tmp_path: Path, *, present: bool = True, start_fails: bool = False) -> FakeEngine:
    """The engine describe_image asks; `start_fails` plays an image with no /bin/sh."""

    def probe(run: Run) -> int:
        if start_fails:
            run.log.write_text('the container did not start: exec: "/bin/sh": no such file\n')
            return 127
        run.log.write_text(DEBIAN)
        return 0

    return FakeEngine(
        root=tmp_path / "engine",
        step=probe,
        present={"reg/risoluto@sha256:abc", "sha256:" + "1" * 64} if present else set(),
        config={"Entrypoint": ["/entry"], "User": "node"},
    )


def _describe(engine: FakeEngine, tmp_path: Path) -> dict[str, Any]:
    return describe_image(
        image="risoluto-codex:latest",
        pinned="reg/risoluto@sha256:abc",
        platform="linux/amd64",
        engine=engine,
        log=tmp_path / "base.log",
    )


def test_the_base_is_pulled_when_absent_then_inspected_and_probed(tmp_path: Path) -> None:
    engine = _engine(tmp_path, present=False)

    facts = _describe(engine, tmp_path)

    assert facts["config"] == {"Entrypoint": ["/entry"], "User": "node"}
    assert facts["os"]["id"] == "debian"
    assert engine.calls == [
        "image_id reg/risoluto@sha256:abc",
        "pull reg/risoluto@sha256:abc",
        "inspect reg/risoluto@sha256:abc",
        "run reg/risoluto@sha256:abc network=False",
        "rm c1",
    ]


def test_a_base_without_a_shell_is_refused(tmp_path: Path) -> None:
    engine = _engine(tmp_path, start_fails=True)

    with pytest.raises(ResolutionError) as caught:
        _describe(engine, tmp_path)

    message = str(caught.value)
    assert "base image risoluto-codex:latest cannot be extended: /bin/sh does not run" in message
    assert '"/bin/sh": no such file' in message
    assert "Debian and Ubuntu based images" in message
    assert engine.calls[-1] == "rm c1", "the container is removed"


# -- what the base has counts ----------------------------------------------------------------


def _spec(
    *, pip: tuple[str, ...] = (), npm: tuple[str, ...] = (), runtimes: tuple[RuntimeSpec, ...] = ()
) -> Spec:
    return Spec(
        path=Path("/p/sandbox.toml"),
        image=ImageSpec(name="t/t"),
        base=BaseSpec(image="risoluto-codex:latest"),
        system_packages=("jq",),
        runtimes=runtimes,
        tools=ToolsSpec(pip=pip, npm=npm),
    )


def _facts(packages: dict[str, str], programs: tuple[str, ...] = ()) -> BaseFacts:
    return BaseFacts(
        packages=packages,
        programs={p: {"path": f"/usr/local/bin/{p}", "version": "1.0"} for p in programs},
    )


def test_without_a_base_pip_and_npm_tools_bring_debians_python_and_node() -> None:
    spec = _spec(pip=("ruff",), npm=("typescript",))

    assert system_request(spec) == ["jq", "nodejs", "npm", "python3", "python3-venv"]


def test_the_bases_debian_python_needs_only_its_venv_package() -> None:
    request = system_request(_spec(pip=("ruff",)), _facts({"python3": "3.11.2-1+b1"}, ("python3",)))

    assert request == ["jq", "python3-venv"]


def test_a_python_and_node_on_the_bases_path_not_from_dpkg_serve_as_they_are() -> None:
    facts = _facts({}, ("python3", "node", "npm"))

    assert system_request(_spec(pip=("ruff",), npm=("typescript",)), facts) == ["jq"]


def test_a_node_without_npm_still_gets_debians_npm() -> None:
    facts = _facts({"nodejs": "18.19.0+dfsg-6~deb12u2"}, ("node",))

    assert system_request(_spec(npm=("typescript",)), facts) == ["jq", "npm"]


def test_an_apt_runtime_the_base_has_is_not_asked_for_again() -> None:
    spec = _spec(runtimes=(RuntimeSpec(name="python", version="3.11", provider=Provider.APT),))
    facts = _facts({"python3": "3.11.2-1+b1", "python3-venv": "3.11.2-1+b1"})

    assert system_request(spec, facts) == ["jq"]


def test_an_apt_runtime_the_base_has_is_the_bases_version() -> None:
    # The issue's "apt has python3 , which is not python 3.11": nothing to install, and the
    # version was read from the (empty) closure instead of the base.
    spec = _spec(runtimes=(RuntimeSpec(name="python", version="3.11", provider=Provider.APT),))
    check_apt_runtimes(spec, [], base={"python3": "3.11.2-1+b1"})

    with pytest.raises(ResolutionError) as caught:
        check_apt_runtimes(
            _spec(runtimes=(RuntimeSpec(name="python", version="3.12", provider=Provider.APT),)),
            [],
            base={"python3": "3.11.2-1+b1"},
        )
    assert "apt has python3 3.11.2-1+b1, which is not python 3.12" in str(caught.value)


def test_a_package_the_system_layer_upgrades_is_checked_at_the_new_version() -> None:
    spec = _spec(runtimes=(RuntimeSpec(name="python", version="3.11", provider=Provider.APT),))

    with pytest.raises(ResolutionError):
        check_apt_runtimes(
            spec, [{"name": "python3", "version": "3.13.1-1"}], base={"python3": "3.11.2-1+b1"}
        )


def test_a_lock_made_before_bases_were_described_keeps_its_pin_and_is_described(
    tmp_path: Path,
) -> None:
    from builder.core.progress import Progress
    from builder.kinds import build_graph
    from builder.kinds.base import Base
    from builder.lock.locking import _Locker
    from builder.model.lockfile import NodeKind, NodeLock
    from builder.store.cache import Cache

    cache = Cache(tmp_path / "cache")
    cache.ensure()
    engine = _engine(tmp_path)
    spec = _spec()
    old = {"image": spec.base.image, "pinned": "sha256:" + "1" * 64, "epoch": 0}
    locker = _Locker(
        spec=spec,
        graph=build_graph(spec),
        previous={
            "base": NodeLock(name="base", kind=NodeKind.BASE, key="k", parents=(), inputs=old)
        },
        update=None,
        cache=cache,
        engine=lambda: engine,
        progress=Progress(quiet=True),
        stager=lambda *_, **__: "sha256:stage",
        platform="linux/amd64",
    )

    inputs = Base().lock(locker, "base")

    assert inputs["pinned"] == old["pinned"], "a moving tag is not re-pinned on the way"
    assert inputs["config"] == {"Entrypoint": ["/entry"], "User": "node"}
    assert f"run {old['pinned']} network=False" in engine.calls
    assert not [call for call in engine.calls if call.startswith("pull")]


def test_an_image_base_names_the_image_the_engine_holds_and_a_bootstrapped_one_none() -> None:
    from builder.kinds.base import held_images
    from builder.model.lockfile import NodeKind, NodeLock

    def nodes(inputs: dict[str, Any]) -> dict[str, NodeLock]:
        base = NodeLock(name="base", kind=NodeKind.BASE, key="k", parents=(), inputs=inputs)
        return {"base": base}

    image = {"image": "risoluto/agent:1", "pinned": "risoluto/agent@sha256:" + "a" * 64}
    assert held_images(nodes(image)) == ("risoluto/agent@sha256:" + "a" * 64,)
    assert held_images(nodes({"bootstrap": {"suite": "bookworm"}})) == ()
    assert held_images({}) == ()
