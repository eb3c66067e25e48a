"""`sandbox check` and the security baseline on a real engine (issue 6).

The image is test_tools_runtimes.py's (node from PyPI, python from apt, npm tools codex and
typescript@5, pip tool ruff, git, iptables, jq, ca-certificates): the same spec text, so
whichever test runs first builds it. The baseline is checked twice: by `sandbox check`, and
independently here with docker (find, inspect, and a scan of `docker save`'s layers for the
host's own CAs: on this machine the TLS proxy's "sandboxing-egress-ca", which Debian's bundle
lacks). Then an image derived with a broken ruff, a planted host CA and a .netrc must fail,
naming each. With an egress allowlist the check runs it with NET_ADMIN and Risoluto's
iptables rules: as root they apply, as another uid the entrypoint would stop, and an image
without iptables fails.
"""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Project, docker
from tests.integration.test_tools_runtimes import AGENT_SPEC

pytestmark = pytest.mark.docker

SPEC = AGENT_SPEC.format(node="22", typescript="typescript@5")
HOST_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
HOST_PUBLIC = Path("/usr/share/ca-certificates/mozilla")
PROXY_CA = "sandboxing-egress-ca"  # the CA of the proxy that re-signs TLS on these machines
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def _ders(pem_text: str) -> list[bytes]:
    return [ssl.PEM_cert_to_DER_cert(block) for block in _PEM.findall(pem_text)]


def _common_name(der: bytes) -> str:
    done = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-noout", "-subject", "-nameopt", "multiline"],
        input=der,
        capture_output=True,
        check=True,
    )
    names = re.findall(r"commonName\s*=\s*(.+)", done.stdout.decode())
    return names[0].strip() if names else done.stdout.decode().strip()


def _host_only_certs(image: str) -> dict[bytes, str]:
    """The host bundle's certificates that are neither in the image's bundle nor public.

    Public: the host's own Mozilla set. The image's ca-certificates can be newer than the
    host's (bookworm-updates), and the roots it dropped are still in pip's vendored certifi.
    """
    known = set(_ders(docker("run", "--rm", image, "cat", str(HOST_BUNDLE))))
    for path in sorted(HOST_PUBLIC.glob("*.crt")):
        known.update(_ders(path.read_text()))
    return {der: _common_name(der) for der in _ders(HOST_BUNDLE.read_text()) if der not in known}


def _layer_files_holding(image: str, needles: list[bytes], work: Path) -> list[str]:
    """Every file of every layer of `image` (from `docker save`) holding one of `needles`."""
    archive = work / "image.tar"
    subprocess.run(["docker", "save", "-o", str(archive), image], check=True)
    found = []
    with tarfile.open(archive) as saved:
        manifest = json.load(saved.extractfile("manifest.json"))  # type: ignore[arg-type]
        for name in manifest[0]["Layers"]:
            layer = saved.extractfile(name)
            assert layer is not None
            with tarfile.open(fileobj=layer) as tar:
                for member in tar:
                    data = tar.extractfile(member) if member.isreg() else None
                    content = data.read() if data else b""
                    if any(needle in content for needle in needles):
                        found.append(f"{name}:{member.name}")
    archive.unlink()
    return found


def _needles(der: bytes) -> list[bytes]:
    """The DER bytes, and a line from the middle of its PEM (any PEM encoder wraps the same)."""
    lines = ssl.DER_cert_to_PEM_cert(der).strip().splitlines()[1:-1]
    return [der, lines[len(lines) // 2].encode()]


def _check(project: Project, *args: str) -> tuple[int, dict[str, dict[str, Any]], str, float]:
    started = time.monotonic()
    run = project.sandbox("check", "--json", *args)
    seconds = time.monotonic() - started
    results = {r["check"]: r for r in json.loads(run.out)} if run.out.strip() else {}
    return run.code, results, run.err, seconds


def test_built_image_meets_the_baseline_and_check_names_what_breaks_it(
    project: Project, base_image: str, tmp_path: Path
) -> None:
    project.write(SPEC)
    project.ok("lock")
    built = json.loads(project.ok("build", "--json").out)
    image, tag = built["image"]["id"], built["image"]["tags"][0]

    code, results, err, seconds = _check(project)
    assert code == 0, err
    failed = [r for r in results.values() if not r["ok"]]
    assert failed == []
    for expected in (
        "user",
        "exposed ports",
        "setuid/setgid files",
        "host CA certificates",
        ".netrc files",
        "bash",
        "base64",
        "git",
        "runtime.node",
        "runtime.python",
        "tools.npm codex",
        "tools.npm tsc",
        "tools.pip ruff",
    ):
        assert expected in results, f"{expected} not checked: {sorted(results)}"
    assert results["runtime.node"]["detail"].startswith("v22.")
    assert results["tools.pip ruff"]["detail"].startswith("ruff ")
    print(f"sandbox check of {image}: {seconds:.1f}s")

    # The same baseline, seen with docker alone.
    setuid = docker(
        "run", "--rm", "--user", "0", image, "find", "/", "-xdev", "-perm", "/6000", "-type", "f"
    )
    assert setuid == "", "setuid/setgid files left in the image"
    assert docker("image", "inspect", image, "--format", "{{json .Config.ExposedPorts}}") == "null"
    assert docker("image", "inspect", image, "--format", "{{.Config.User}}") == "agent"
    own = _host_only_certs(image)
    print("host-only CA certificates:", sorted(own.values()))
    if any(PROXY_CA.encode() in der for der in _ders(HOST_BUNDLE.read_text())):
        assert PROXY_CA in own.values()
    needles = [n for der in own for n in _needles(der)]
    assert _layer_files_holding(image, needles, tmp_path) == []
    for name in own.values():
        assert f"CN={name}" in results["host CA certificates"]["detail"]

    # An image derived with a broken tool, a host CA and a .netrc fails, naming each.
    context = tmp_path / "broken"
    context.mkdir()
    planted = next(iter(own), None)
    (context / "leak.pem").write_text(ssl.DER_cert_to_PEM_cert(planted) if planted else "")
    (context / "netrc").write_text("machine example.com login me password pw\n")
    (context / "Dockerfile").write_text(
        f"FROM {tag}\nUSER root\n"
        "RUN rm /opt/sandbox/tools/pip/ruff/bin/ruff\n"
        "COPY leak.pem /usr/local/share/leak.pem\n"
        "COPY netrc /home/agent/.netrc\n"
        "USER agent\n"
    )
    broken = "sandbox-test/check-broken:latest"
    docker("build", "-q", "-t", broken, str(context))
    try:
        code, results, err, _ = _check(project, "--image", broken)
    finally:
        docker("rmi", "-f", broken, check=False)
    assert code == 5, err
    assert "tools.pip ruff" in err
    assert not results["tools.pip ruff"]["ok"]
    assert "not found" in results["tools.pip ruff"]["detail"]
    assert not results[".netrc files"]["ok"]
    assert "/home/agent/.netrc" in results[".netrc files"]["detail"]
    assert "not from sandbox.lock" in results[".netrc files"]["detail"]
    if planted is not None:
        assert not results["host CA certificates"]["ok"]
        assert "/usr/local/share/leak.pem" in results["host CA certificates"]["detail"]
    assert results["git"]["ok"], "only what broke fails"

    # An egress allowlist: run with NET_ADMIN and Risoluto's entrypoint's iptables rules, as
    # root (Risoluto as root). [sandbox] is not part of what is locked: nothing rebuilds.
    project.write(SPEC + '\n[sandbox]\negress_allowlist = ["deb.debian.org"]\n')
    code, results, err, _ = _check(project, "--uid", "0")

    assert code == 0, err
    run = results["docker run"]["detail"]
    for flag in ("--user 0:0", "--cap-drop=ALL", "--cap-add=NET_ADMIN", "--network <default"):
        assert flag in run
    egress = results["overlay egress allowlist"]
    assert egress["ok"]
    assert " rules in OUTPUT " in egress["detail"]
    assert "-A OUTPUT -j REJECT" in egress["detail"] or "-A OUTPUT -j DROP" in egress["detail"]
    assert results["home (CODEX_HOME)"]["ok"]

    # The default, arbitrary uid: warned that the allowlist needs Risoluto to run as root.
    code, results, err, _ = _check(project)
    assert code == 0, err
    assert results["overlay egress allowlist"]["detail"].startswith("warning: as uid 12345")

    # Risoluto running as another uid: iptables fails and the entrypoint stops.
    code, results, err, _ = _check(project, "--uid", "1000:1000")
    assert code == 5, err
    assert (
        "as uid 1000 iptables cannot set the rules" in results["overlay egress allowlist"]["detail"]
    )
    assert results["home (CODEX_HOME)"]["ok"]

    # An image without iptables: the entrypoint would skip the rules without a word.
    context = tmp_path / "no-iptables"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f'FROM {tag}\nUSER root\nRUN rm "$(command -v iptables)"\nUSER agent\n'
    )
    derived = "sandbox-test/check-no-iptables:latest"
    docker("build", "-q", "-t", derived, str(context))
    try:
        code, results, err, _ = _check(project, "--uid", "0", "--image", derived)
    finally:
        docker("rmi", "-f", derived, check=False)
    assert code == 5, err
    assert not results["overlay iptables"]["ok"]
    assert "iptables is not in the image" in results["overlay egress allowlist"]["detail"]
    assert "overlay egress allowlist" in err
