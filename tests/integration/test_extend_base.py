"""Extending the orchestrator's own image, as the first seed's `FROM risoluto-codex:latest` does.

The stand-in for risoluto-codex:latest is made here from the session's bootstrapped base with
a tiny Dockerfile: python3 from Debian, Node.js 22 (with npm) under /usr/local as the
node:22 images have it (not from dpkg), an ENTRYPOINT script, CMD ["bash", "-l"], ENV
CODEX_HOME and HOME (build steps must still cache under root's), a label, an EXPOSE, USER
1000:1000 and WORKDIR /home/agent; its uid 1000 is the base's `agent`. sandbox.toml then adds
Debian packages, a pip tool and an npm tool with no [runtimes] at all, and no [image].user
or workdir.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest

from builder.resolve import runtimes
from builder.store.cache import default_download_dir
from tests.integration.conftest import Project, docker
from tests.integration.risoluto_spawn import run_agent
from tests.unit.conftest import typed_runtime

pytestmark = pytest.mark.docker

STAND_IN = "sandbox-test/risoluto-codex:latest"
ENTRY = '#!/bin/sh\nexport RISOLUTO_ENTRY=ran\nexec "$@"\n'
DOCKERFILE = """FROM {base}
USER root
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 \\
 && rm -rf /var/lib/apt/lists/*
COPY node /usr/local/lib/nodejs
RUN ln -s /usr/local/lib/nodejs/bin/node /usr/local/lib/nodejs/bin/npm /usr/local/bin/
COPY risoluto-entry /usr/local/bin/risoluto-entry
ENV CODEX_HOME=/home/agent/.codex HOME=/home/agent
LABEL org.example.orchestrator="risoluto stand-in"
EXPOSE 4000
USER 1000:1000
WORKDIR /home/agent
ENTRYPOINT ["/usr/local/bin/risoluto-entry"]
CMD ["bash", "-l"]
"""
SPEC = """
[image]
name = "sandbox-test/extended"

[base]
image = "{base}"

[system]
packages = ["git", "jq"]  # git: its .debs are in the tests' apt cache

[tools]
pip = ["ruff"]
npm = ["{typescript}"]
"""


@pytest.fixture(scope="module")
def stand_in(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    context = tmp_path_factory.mktemp("stand-in")
    # Node.js 22 as node:22 installs it, from the same PyPI wheel the tests' runtimes use.
    downloads = default_download_dir()
    node = typed_runtime(
        runtimes.resolve_runtime(
            "node", "22", "pypi", mirror=None, platform="linux/amd64", downloads=downloads
        )
    )
    archive = runtimes.runtime_archive(node, downloads=downloads)
    runtimes.layout_runtime(node, archive, context / "node", platform="linux/amd64")
    shutil.rmtree(context / "node" / "include")  # C headers: 67 MB the test does not need
    (context / "risoluto-entry").write_text(ENTRY)
    (context / "risoluto-entry").chmod(0o755)
    (context / "Dockerfile").write_text(DOCKERFILE.format(base=base_image))
    docker("build", "-q", "-t", STAND_IN, str(context))
    yield STAND_IN
    docker("rmi", STAND_IN, check=False)


def _nodes(project: Project) -> dict[str, Any]:
    nodes: dict[str, Any] = tomllib.loads(project.lock.read_text())["platforms"]["linux/amd64"][
        "nodes"
    ]
    return nodes


def _config(image: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", image))
    return config


def test_the_orchestrators_image_is_extended_as_from_does(project: Project, stand_in: str) -> None:
    project.write(SPEC.format(base=stand_in, typescript="typescript@5.6"))
    locked = project.ok("lock")
    nodes = _nodes(project)
    assert not [n for n in nodes if n.startswith("runtime.")]
    base = nodes["base"]["inputs"]
    assert base["programs"]["python3"]["path"] == "/usr/bin/python3"
    assert base["programs"]["node"]["version"].startswith("22.")
    system = {p["name"] for p in nodes["system"]["inputs"]["packages"]}
    assert "jq" in system
    assert "python3-venv" in system, "Debian's python3 makes venvs with it"
    assert not {"python3", "nodejs", "npm"} & system, "the base's python3 and node serve"
    assert nodes["tools.pip"]["inputs"]["python"] == next(
        p["version"] for p in base["packages"] if p["name"] == "python3"
    )
    assert nodes["tools.npm"]["inputs"]["node"] == base["programs"]["node"]["version"]
    assert "note: tools.pip uses the base's python3" in locked.err
    assert "note: tools.npm uses the base's /usr/local/bin/node 22." in locked.err
    assert "exposes 4000/tcp; the image exposes no port" in locked.err

    first = json.loads(project.ok("build", "--json").out)
    image = first["image"]["id"]
    config, theirs = _config(image), _config(stand_in)
    assert config["Entrypoint"] == theirs["Entrypoint"] == ["/usr/local/bin/risoluto-entry"]
    assert config["Cmd"] == theirs["Cmd"] == ["bash", "-l"]
    assert config["WorkingDir"] == "/home/agent"
    assert config["User"] == "1000:1000"
    assert not config.get("ExposedPorts")
    assert config["Labels"]["org.example.orchestrator"] == "risoluto stand-in"
    assert config["Labels"]["org.opencontainers.image.title"] == "sandbox-test/extended"
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["CODEX_HOME"] == "/home/agent/.codex"
    assert env["PATH"].endswith(dict(e.split("=", 1) for e in theirs["Env"])["PATH"])
    assert "/opt/sandbox/tools/pip/bin" in env["PATH"]

    # Through the base's entrypoint, as an arbitrary uid, every addition runs.
    out = docker(
        "run", "--rm", "--user", "12345:12345", "-e", "HOME=/tmp", image, "sh", "-c",
        'echo "$RISOLUTO_ENTRY"; id -u; ruff --version; tsc --version; jq --version; pwd',
    ).splitlines()  # fmt: skip
    assert out[0] == "ran", out
    assert out[1] == "12345"
    assert out[2].startswith("ruff "), out
    assert out[3].startswith("Version 5.6."), out
    assert out[4].startswith("jq-"), out
    assert out[5] == "/home/agent"

    # As Risoluto runs the agent: its ENTRYPOINT kept, `bash -lc`, umask 077, Risoluto's
    # limits and HOME volume (tests/integration/risoluto_spawn.py, from its spawn.ts).
    seen = run_agent(
        image,
        'echo "$RISOLUTO_ENTRY"; ruff --version; tsc --version; jq --version; node --version',
        workspace=project.root / "workspace",
    ).split()
    assert seen[0] == "ran", seen
    assert seen[1:4:2] == ["ruff", "Version"], seen
    assert seen[4].startswith("5.6."), seen
    assert seen[5].startswith("jq-"), seen
    assert seen[6].startswith("v22."), seen

    checked = project.sandbox("check", "--json")
    assert checked.code == 0, checked.err
    results = {r["check"]: r for r in json.loads(checked.out)}
    assert results["python3 (tools.pip)"]["detail"].startswith("Python 3.11")
    assert results["node (tools.npm)"]["detail"].startswith("v22.")

    # A bump of one tool rebuilds only its node.
    keys = {name: node["key"] for name, node in _nodes(project).items()}
    project.write(SPEC.format(base=stand_in, typescript="typescript@5.7"))
    project.ok("lock")
    changed = {name for name, node in _nodes(project).items() if keys[name] != node["key"]}
    assert changed == {"tools.npm"}
    second = json.loads(project.ok("build", "--json").out)
    built = {n["name"] for n in second["nodes"] if n["status"] == "built"}
    assert built == {"tools.npm"}
    assert _config(second["image"]["id"])["Entrypoint"] == ["/usr/local/bin/risoluto-entry"]

    # An apt runtime the base already has is satisfied by it, at the base's version.
    project.write(
        SPEC.format(base=stand_in, typescript="typescript@5.7")
        + '\n[runtimes]\npython = { version = "3.11", provider = "apt" }\n'
    )
    relocked = project.ok("lock")
    assert "note: [runtimes].python (apt): the base has python3 3.11." in relocked.err
    assert not {"python3"} & {p["name"] for p in _nodes(project)["system"]["inputs"]["packages"]}


def test_a_base_we_cannot_extend_is_refused_at_lock(project: Project, stand_in: str) -> None:
    context = project.root / "no-apt"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {stand_in}\nUSER root\nRUN rm /usr/bin/apt-get /usr/bin/dpkg-query\n"
    )
    no_apt, no_shell = "sandbox-test/no-apt:latest", "sandbox-test/no-shell:latest"
    docker("build", "-q", "-t", no_apt, str(context))
    with tarfile.open(context / "rootfs.tar", "w") as tar:  # one static file, no /bin/sh
        info = tarfile.TarInfo("etc/hostname")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"none\n"))
    docker("import", str(context / "rootfs.tar"), no_shell)
    try:
        for tag, why in (
            (no_apt, "(Debian GNU/Linux 12 (bookworm)) cannot be extended: it has no dpkg"),
            (no_shell, "cannot be extended: /bin/sh does not run in it"),
        ):
            project.write(f'[image]\nname = "sandbox-test/x"\n\n[base]\nimage = "{tag}"\n')
            result = project.sandbox("lock")
            assert result.code == 4, result.err
            assert f"base image {tag} {why}" in result.err
            assert "Debian and Ubuntu based images" in result.err
            assert "Traceback" not in result.err
            assert not project.lock.exists()
    finally:
        docker("rmi", no_apt, no_shell, check=False)
