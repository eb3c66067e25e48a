"""`sandbox check` without Docker: layer scans on synthetic tars, probes, the report.

Covers builder/check/baseline.py with the modules it is made of: scan.py, certs.py, probes.py and
report.py (one feature, so one test file); the engine is a recording fake.

The layers are real tar files written here, stacked the way the engine stacks them (whiteouts
included); the certificates are real self-signed ones (made once with openssl and pasted).
"""

from __future__ import annotations

import io
import json
import ssl
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.check import probes, scan
from builder.check.baseline import config_checks, leak_checks, setuid_check
from builder.check.probes import run_probes
from builder.check.report import CheckResult, render_table
from builder.check.scan import LayerRef
from builder.check.spawn import parse_uid
from builder.core import certs
from builder.core.errors import CheckError
from builder.engine.interface import Confinement
from builder.model.lockfile import NodeKind, NodeLock
from builder.model.spec import (
    BaseSpec,
    BinaryTool,
    ImageSpec,
    Provider,
    RuntimeSpec,
    SandboxSpec,
    Spec,
    ToolsSpec,
)
from builder.store.cache import Cache

PROXY_CA = """-----BEGIN CERTIFICATE-----
MIIBqzCCAVGgAwIBAgIUD/ZtZnY+Q57AyFGhXbBL7MIa7D0wCgYIKoZIzj0EAwIw
KjEQMA4GA1UECgwHRXhhbXBsZTEWMBQGA1UEAwwNdGVzdC1wcm94eS1jYTAgFw0y
NjExMjIxNzM1MDRaGA8yMTI2MTAyOTE3MzUwNFowKjEQMA4GA1UECgwHRXhhbXBs
ZTEWMBQGA1UEAwwNdGVzdC1wcm94eS1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABI5M9N/4sTvQpb5JQbIVE/L+FRM15gPftOjIW3QD8bO4gYfjMA/Wdpjs+UIq
URjV5ZLgaQanMhBAO5adsmz8DY+jUzBRMB0GA1UdDgQWBBSYCp9qIzgMkzxQIId0
gWUSYviRtTAfBgNVHSMEGDAWgBSYCp9qIzgMkzxQIId0gWUSYviRtTAPBgNVHRMB
Af8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQC5cAMGYP4Q2/tbv9jMYK1rgmW0
qUULF7Zrt6BOdbEZMgIgLktmelmZ5FpUUQVwy8W8sEYtH2lruPKLWxLir6jrmvU=
-----END CERTIFICATE-----
"""
PUBLIC_ROOT = """-----BEGIN CERTIFICATE-----
MIIBsTCCAVegAwIBAgIUZS7JCBpqAdPmrPPQAmVMesqTTZYwCgYIKoZIzj0EAwIw
LTEQMA4GA1UECgwHRXhhbXBsZTEZMBcGA1UEAwwQdGVzdC1wdWJsaWMtcm9vdDAg
Fw0yNjExMjIxNzM1MDRaGA8yMTI2MTAyOTE3MzUwNFowLTEQMA4GA1UECgwHRXhh
bXBsZTEZMBcGA1UEAwwQdGVzdC1wdWJsaWMtcm9vdDBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABKpqxmeqTDo7Xk+RfetNLtwNda+4UVCSwTe2uaYM3sr9ScmmZ4Du
7Jhve4DhvyQlFnHE6GAXJJuQaf3Qcoxfd6mjUzBRMB0GA1UdDgQWBBQSDVGTorw4
2a7ocCeffF0Lxj32OTAfBgNVHSMEGDAWgBQSDVGTorw42a7ocCeffF0Lxj32OTAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDzPBLu57/VhJ7cWtd+
vwjR7wxKyBeXy1W4SG6FcMfo0AIgBUpI8RYi6+DELZOhV1NKNQBALiqK09JO9tx2
TsEigvY=
-----END CERTIFICATE-----
"""
PROXY_DER = ssl.PEM_cert_to_DER_cert(PROXY_CA)
PUBLIC_DER = ssl.PEM_cert_to_DER_cert(PUBLIC_ROOT)


@dataclass(frozen=True)
class Entry:
    name: str
    data: bytes = b""
    mode: int = 0o644
    kind: bytes = tarfile.REGTYPE


def layer(tmp_path: Path, name: str, *entries: Entry) -> LayerRef:
    path = tmp_path / f"{name}.tar"
    with tarfile.open(path, "w") as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type, info.mode = entry.kind, entry.mode
            info.size = len(entry.data) if entry.kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(entry.data) if info.size else None)
    return LayerRef(name=name, path=path)


def folder(name: str) -> Entry:
    return Entry(name=name, mode=0o755, kind=tarfile.DIRTYPE)


# -- setuid files: judged on the stacked image ------------------------------------------------


def test_setuid_files_are_those_left_after_stacking_the_layers(tmp_path: Path) -> None:
    base = layer(
        tmp_path,
        "base",
        Entry("usr/bin/passwd", b"x", 0o4755),
        Entry("usr/bin/su", b"x", 0o4755),
        Entry("usr/bin/wall", b"x", 0o2755),
        Entry("usr/bin/mount", b"x", 0o4755),
        Entry("usr/lib/helper/setuid-helper", b"x", 0o4755),
        folder("var/mail"),  # a setgid folder is not a file
    )
    system = layer(
        tmp_path,
        "system",
        Entry("usr/bin/passwd", b"x", 0o755),  # bits cleared: copied up without them
        Entry("usr/bin/.wh.su"),  # deleted
        Entry("usr/lib/helper/.wh..wh..opq"),  # folder emptied
        Entry("usr/bin/sudo", b"x", 0o4755),  # added setuid
    )
    tools = layer(tmp_path, "tools.npm", Entry("opt/sandbox/tools/npm/bin/x", b"x", 0o6755))

    found = scan.survey([base, system, tools]).setuid

    assert found == {
        "/opt/sandbox/tools/npm/bin/x": "tools.npm",
        "/usr/bin/mount": "base",
        "/usr/bin/sudo": "system",
        "/usr/bin/wall": "base",
    }


def test_a_file_replacing_a_folder_hides_what_was_under_it(tmp_path: Path) -> None:
    base = layer(tmp_path, "base", folder("opt/x"), Entry("opt/x/tool", b"x", 0o4755))
    upper = layer(tmp_path, "system", Entry("opt/x", b"not a folder any more"))

    assert scan.survey([base, upper]).setuid == {}


def test_setuid_check_passes_allowed_paths_and_names_the_others() -> None:
    found = {"/usr/bin/sudo": "system", "/usr/bin/mount": "base"}

    [allowed] = setuid_check({"/usr/bin/sudo": "system"}, ("/usr/bin/sudo",))
    [bad] = setuid_check(found, ("/usr/bin/sudo",))

    assert allowed.ok
    assert allowed.detail == "only allowed: /usr/bin/sudo"
    assert not bad.ok
    assert "/usr/bin/mount (from base)" in bad.detail
    assert "/usr/bin/sudo" not in bad.detail
    assert "allow_setuid" in bad.detail


# -- leaks: judged on every layer -------------------------------------------------------------


def test_host_only_certificates_are_those_no_public_set_holds() -> None:
    bundle = (PUBLIC_ROOT + PROXY_CA + PROXY_CA).encode()

    own = certs.host_only(bundle, {PUBLIC_DER})

    assert own == [PROXY_DER]
    assert certs.describe(PROXY_DER) == "CN=test-proxy-ca"
    assert certs.describe(b"\x30\x03garbage").startswith("sha256:")


def test_public_certs_come_from_the_images_mozilla_folder(tmp_path: Path) -> None:
    system = layer(
        tmp_path,
        "system",
        Entry("usr/share/ca-certificates/mozilla/Root.crt", PUBLIC_ROOT.encode()),
        Entry("etc/ssl/certs/ca-certificates.crt", (PUBLIC_ROOT + PROXY_CA).encode()),
    )

    assert scan.survey([system]).public == {PUBLIC_DER}


def test_leaks_are_found_in_any_layer_with_layer_and_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "_WINDOW", 4096)  # needles straddle window edges below
    monkeypatch.setattr(scan, "_OVERLAP", 1024)
    token = b"s3cr3t-t0ken-value"
    rewrapped = PROXY_CA.replace("\n", "").replace("-----MII", "-----\nMII")  # one long line
    base = layer(tmp_path, "base", Entry("etc/ssl/certs/public.pem", PUBLIC_ROOT.encode()))
    system = layer(
        tmp_path,
        "system",
        Entry("root/.netrc", b"machine example.com login me password pw"),
        Entry("etc/ssl/certs/ca-certificates.crt", (PUBLIC_ROOT + PROXY_CA).encode()),
    )
    tools = layer(
        tmp_path,
        "tools.pip",
        Entry("opt/sandbox/tools/pip/x/cacert.pem", b"#\n" * 3000 + rewrapped.encode()),
        Entry("opt/sandbox/tools/pip/x/keystore", b"\0" * 4090 + PROXY_DER + b"\0" * 10),
        Entry("opt/sandbox/tools/pip/x/config", b"a" * 4090 + token + b"b"),
        Entry("opt/sandbox/tools/pip/x/.wh.gone"),
    )

    hits = scan.find_leaks(
        [base, system, tools], ca={PROXY_DER: "CN=test-proxy-ca"}, secrets={"$TOKEN": token}
    )

    assert [(h.layer, h.path, h.what) for h in hits] == [
        ("system", "/etc/ssl/certs/ca-certificates.crt", "host CA certificate CN=test-proxy-ca"),
        ("system", "/root/.netrc", ".netrc file"),
        (
            "tools.pip",
            "/opt/sandbox/tools/pip/x/cacert.pem",
            "host CA certificate CN=test-proxy-ca",
        ),
        ("tools.pip", "/opt/sandbox/tools/pip/x/config", "$TOKEN"),
        ("tools.pip", "/opt/sandbox/tools/pip/x/keystore", "host CA certificate CN=test-proxy-ca"),
    ]


def test_leak_checks_report_each_kind_and_say_what_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(certs, "HOST_PUBLIC", tmp_path / "no-such-folder")
    bundle = tmp_path / "host-bundle.crt"
    bundle.write_text(PUBLIC_ROOT + PROXY_CA)
    clean = layer(
        tmp_path,
        "system",
        Entry("usr/share/ca-certificates/mozilla/Root.crt", PUBLIC_ROOT.encode()),
    )
    leaky = layer(tmp_path, "tools.pip", Entry("opt/ca.pem", PROXY_CA.encode()))
    spec = _spec(
        tools=ToolsSpec(
            bin=(
                BinaryTool(name="sdk", version="1", url="https://x/sdk", auth_env="SDK_TOKEN"),
                BinaryTool(name="cli", version="1", url="https://x/cli", auth_env="CLI_TOKEN"),
            )
        )
    )
    env = {"SDK_TOKEN": "long-enough-token"}

    public = scan.survey([clean]).public
    passed = leak_checks([clean], public=public, spec=spec, environ=env, host_bundle=bundle)
    failed = leak_checks([clean, leaky], public=public, spec=spec, environ=env, host_bundle=bundle)

    assert [(r.check, r.ok) for r in passed] == [
        ("host CA certificates", True),
        (".netrc files", True),
        ("credentials", True),
    ]
    assert "CN=test-proxy-ca" in passed[0].detail
    assert "$SDK_TOKEN of tools.bin.sdk" in passed[2].detail
    assert "$CLI_TOKEN of tools.bin.cli is not set" in passed[2].detail
    assert not failed[0].ok
    assert "CN=test-proxy-ca at /opt/ca.pem in layer tools.pip" in failed[0].detail


def test_without_any_public_set_the_ca_check_warns_instead_of_guessing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(certs, "HOST_PUBLIC", tmp_path / "no-such-folder")
    bundle = tmp_path / "host-bundle.crt"
    bundle.write_text(PUBLIC_ROOT)
    image = layer(tmp_path, "system", Entry("etc/x", b"x"))

    [ca, netrc] = leak_checks([image], public=set(), spec=_spec(), environ={}, host_bundle=bundle)

    assert ca.ok
    assert ca.warning
    assert netrc.ok


# -- probes ------------------------------------------------------------------------------------


def _spec(**changes: object) -> Spec:
    args: dict[str, object] = {
        "path": Path("/p/sandbox.toml"),
        "image": ImageSpec(name="t/t"),
        "base": BaseSpec(image="debian:bookworm"),
    }
    args.update(changes)
    return Spec(**args)  # type: ignore[arg-type]


PIP_TOOL = {"requirement": "x", "packages": []}


def _nodes() -> dict[str, NodeLock]:
    npm = {
        "node": "22.12.0",
        "tools": ["typescript@5", "@openai/codex"],
        "packages": [
            {"path": "node_modules/typescript", "bin": {"tsc": "bin/tsc", "tsserver": "x"}},
            {"path": "node_modules/@openai/codex", "bin": "bin/codex.js"},
            {"path": "node_modules/other", "bin": {"not-a-tool": "x"}},
            {"path": "node_modules/typescript/node_modules/x", "bin": {"nested": "x"}},
        ],
    }
    pip: dict[str, object] = {"python": "3.11.2", "tools": {"ruff": PIP_TOOL, "mypy": PIP_TOOL}}
    return {
        name: NodeLock(name=name, kind=NodeKind.TOOLS, key="k", parents=(), inputs=inputs)
        for name, inputs in (("tools.npm", npm), ("tools.pip", pip))
    }


def test_probes_cover_the_basics_runtimes_tools_and_the_overlays_needs() -> None:
    spec = _spec(
        runtimes=(
            RuntimeSpec(name="java", version="21"),
            RuntimeSpec(name="node", version="22", provider=Provider.PYPI),
        ),
        tools=ToolsSpec(bin=(BinaryTool(name="kubectl", version="1", url="https://x/k"),)),
        sandbox=SandboxSpec(egress_allowlist=("registry.npmjs.org",)),
    )

    layers = {
        name: NodeLock(name=name, kind=kind, key="k", parents=(), inputs={})
        for name, kind in (
            ("runtime.java", NodeKind.RUNTIME),
            ("runtime.node", NodeKind.RUNTIME),
            ("tools.bin.kubectl", NodeKind.TOOLS),
        )
    }
    plan = probes.plan_probes(spec, {**_nodes(), **layers})

    assert [(p.check, p.argv) for p in plan.probes] == [
        ("bash", ("bash", "--version")),
        ("base64", ("base64", "--version")),
        ("git", ("git", "--version")),
        ("runtime.java", ("java", "-version")),
        ("runtime.node", ("node", "--version")),
        ("tools.bin.kubectl", ("kubectl",)),
        ("tools.npm codex", ("codex",)),
        ("tools.npm tsc", ("tsc",)),
        ("tools.npm tsserver", ("tsserver",)),
        ("python3 (tools.pip)", ("python3", "--version")),
        ("overlay iptables", ("iptables", "--version")),
        ("overlay getent", ("getent", "--version")),
        ("overlay awk", ("awk", 'BEGIN { print "awk runs" }')),
    ]
    (finder,) = plan.finders
    assert (finder.label, finder.owners) == ("tools.pip", ("mypy", "ruff"))
    assert "overlay" not in str(probes.plan_probes(_spec(), {}).probes)


def test_tools_without_a_declared_runtime_probe_the_images_own_python3_node_and_npm() -> None:
    plan = probes.plan_probes(_spec(), _nodes())

    checks = {p.check: p.argv for p in plan.probes}
    assert checks["python3 (tools.pip)"] == ("python3", "--version")
    assert checks["node (tools.npm)"] == ("node", "--version")
    assert checks["npm (tools.npm)"] == ("npm", "--version")
    declared = _spec(runtimes=(RuntimeSpec(name="python", version="3.11", provider=Provider.APT),))
    planned = probes.plan_probes(declared, _nodes()).probes
    assert "python3 (tools.pip)" not in {p.check for p in planned}


def test_an_npm_bin_name_that_is_not_a_plain_name_is_never_put_in_the_script() -> None:
    nodes = _nodes()
    npm = nodes["tools.npm"]
    bins = {"$(rm -rf ~)": "a"}
    evil = {"node": "22", "tools": ["x"], "packages": [{"path": "node_modules/x", "bin": bins}]}
    nodes["tools.npm"] = NodeLock(
        name=npm.name, kind=NodeKind.TOOLS, key="k", parents=(), inputs=evil
    )

    plan = probes.plan_probes(_spec(), nodes)

    assert plan.refused == ("tools.npm '$(rm -rf ~)'",)
    assert "rm -rf" not in probes.script(plan)


def test_script_output_is_parsed_into_outcomes_and_pip_owners() -> None:
    output = (
        "@@probe 0 bash\n@@out GNU bash, version 5.2.15\n@@out more\n"
        "@@found tools.pip ruff ruff\n@@probe 127 tools.pip ruff\n"
        "@@out timeout: failed to run 'ruff'\n"
        "@@found tools.pip mypy dmypy\n@@probe 0 tools.pip dmypy\n@@out \n@@out dmypy 1.13\n"
    )

    outcomes, found = probes.parse(output)

    assert [(o.check, o.code, o.output) for o in outcomes] == [
        ("bash", 0, ("GNU bash, version 5.2.15", "more")),
        ("tools.pip ruff", 127, ("timeout: failed to run 'ruff'",)),
        ("tools.pip dmypy", 0, ("dmypy 1.13",)),
    ]
    assert found == {"tools.pip": {"ruff": ["ruff"], "mypy": ["dmypy"]}}


# -- the report --------------------------------------------------------------------------------


def test_config_checks_refuse_root_and_exposed_ports() -> None:
    good = config_checks({"User": "agent"})
    bad = config_checks({"User": "0:0", "ExposedPorts": {"8080/tcp": {}}})

    assert all(r.ok for r in good)
    assert [r.ok for r in bad] == [False, False]
    assert "8080/tcp" in bad[1].detail
    assert not config_checks({})[0].ok, "no User means root"


def test_table_and_json_say_what_passed() -> None:
    results = [
        CheckResult(check="git", ok=True, detail="git version 2.39.5"),
        CheckResult(check="tools.pip ruff", ok=False, detail="not found on PATH"),
        CheckResult(check="gvisor", ok=True, detail="warning: no runsc", warning=True),
    ]

    table = render_table(results)

    assert table.splitlines() == [
        "  ok    git             git version 2.39.5",
        "  FAIL  tools.pip ruff  not found on PATH",
        "  warn  gvisor          warning: no runsc",
    ]
    assert json.loads(json.dumps([r.to_json() for r in results]))[1] == {
        "check": "tools.pip ruff",
        "ok": False,
        "detail": "not found on PATH",
    }


class FakeProber:
    def __init__(self, output: str, runtimes: tuple[str, ...] = ("runc",)) -> None:
        self.output = output
        self._runtimes = runtimes
        self.calls: list[dict[str, object]] = []

    def runtimes(self) -> list[str]:
        return list(self._runtimes)

    def run_confined(self, **kwargs: object) -> tuple[int, str]:
        self.calls.append(kwargs)
        return 0, self.output


def test_probes_run_as_the_orchestrator_and_name_what_failed(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    fake = FakeProber(
        "@@probe 0 bash\n@@out GNU bash\n"
        "@@probe 126 git\n@@out sh: git: Permission denied\n"
        "@@found tools.pip mypy dmypy\n@@probe 0 tools.pip dmypy\n@@out dmypy 1.13\n"
        "@@probe 124 tools.npm tsc\n",
        runtimes=("runc",),
    )
    spec = _spec(sandbox=SandboxSpec(gvisor=True))

    results = run_probes(engine=fake, cache=cache, spec=spec, nodes=_nodes(), ref="img")

    assert [(r.check, r.ok, r.detail) for r in results] == [
        ("gvisor", True, results[0].detail),
        ("docker run", True, results[1].detail),
        ("bash", True, "GNU bash"),
        ("git", False, "not executable by uid 12345: sh: git: Permission denied"),
        ("tools.pip dmypy (mypy)", True, "dmypy 1.13"),
        ("tools.npm tsc", False, "timed out after 60s"),
        ("tools.pip ruff", False, results[-1].detail),
    ]
    assert results[0].warning
    assert "runsc" in results[0].detail
    assert "no executable of ruff" in results[-1].detail
    [call] = fake.calls
    run = call["confinement"]
    assert isinstance(run, Confinement)
    assert run.user == "12345:12345"
    assert run.env == {"HOME": "/home/agent", "CODEX_HOME": "/home/agent/.codex-runtime"}
    assert run.home == "/home/agent"
    assert run.runtime is None
    assert run.network is None  # Docker's default bridge
    assert run.extra_hosts == {"host.docker.internal": "host-gateway"}
    assert run.cap_drop == ("ALL",)
    assert run.cap_add == ()
    assert run.security_opt == ("no-new-privileges",)
    assert run.tmpfs == {"/tmp": "exec,size=512m"}
    assert (run.memory, run.memory_swap, run.memory_reservation, run.cpus) == (
        "4g",
        "4g",
        "1g",
        2.0,
    )
    workspace, archive = run.mounts
    assert (workspace.target, workspace.read_only) == (workspace.source, False)
    assert run.workdir == workspace.target
    assert (archive.target, archive.read_only) == (archive.source, False)
    command = call["command"]
    assert isinstance(command, tuple)
    shell, login, script = command
    assert (shell, login) == ("bash", "-lc")  # Risoluto's: after the image's ENTRYPOINT
    assert script.splitlines()[1] == "umask 077"
    assert script.index("home (CODEX_HOME)") < script.index("workspace") < script.index("bash")
    assert "iptables -A" not in script
    assert "--cap-drop=ALL --security-opt=no-new-privileges" in results[1].detail
    assert list(cache.root.joinpath("tmp").iterdir()) == [], "the scratch folders are removed"


def test_the_run_follows_the_overlay_and_the_uid(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    fake = FakeProber("@@probe 0 overlay egress allowlist\n@@out 6 rules in OUTPUT (1 for a...\n")
    sandbox = SandboxSpec(
        egress_allowlist=("pypi.org", "github.com"),
        drop_capabilities=False,
        no_new_privileges=False,
        network="agents",
        resources={"memory": "8g", "memory_swap": "8g", "cpus": "1.5", "tmpfs_size": "1g"},
    )

    results = run_probes(
        engine=fake, cache=cache, spec=_spec(sandbox=sandbox), nodes={}, ref="i", user=(0, 0)
    )

    run = fake.calls[0]["confinement"]
    assert isinstance(run, Confinement)
    assert run.user == "0:0"
    assert run.cap_drop == ()
    assert run.cap_add == ("NET_ADMIN",)
    assert run.security_opt == ()
    assert run.network == "agents"
    assert run.env["RISOLUTO_EGRESS_ALLOWLIST"] == "pypi.org github.com"
    assert (run.memory, run.memory_swap, run.cpus, run.tmpfs["/tmp"]) == (
        "8g",
        "8g",
        1.5,
        "exec,size=1g",
    )
    command = fake.calls[0]["command"]
    assert isinstance(command, tuple)
    script = command[2]
    assert script.index("iptables -A OUTPUT -o lo -j ACCEPT") < script.index("home (CODEX_HOME)")
    assert "set -euo pipefail" in script
    egress = next(r for r in results if r.check == "overlay egress allowlist")
    assert egress.ok
    assert "--cap-add=NET_ADMIN" in results[0].detail
    assert "--network agents" in results[0].detail


@pytest.mark.parametrize(
    ("output", "user", "says"),
    [
        (
            "@@probe 127 overlay egress allowlist\n@@out bash: iptables: not found\n",
            (0, 0),
            "iptables is not in the image",
        ),
        (
            "@@probe 4 overlay egress allowlist\n@@out iptables: Permission denied (be root)\n",
            (12345, 12345),
            "as uid 12345 iptables cannot set the rules",
        ),
        (
            "@@probe 1 overlay egress allowlist\n@@out iptables: No chain/target/match\n",
            (0, 0),
            "the entrypoint's iptables rules failed (exit 1",
        ),
        (
            "@@probe 1 home (CODEX_HOME)\n@@out mkdir: Permission denied\n",
            (12345, 12345),
            "as uid 12345 the entrypoint cannot make $CODEX_HOME",
        ),
        (
            "@@probe 1 workspace\n@@out touch: Permission denied\n",
            (12345, 12345),
            "as uid 12345 the agent cannot write its workspace",
        ),
    ],
)
def test_where_risolutos_entrypoint_would_stop_is_a_failure_saying_why(
    tmp_path: Path, output: str, user: tuple[int, int], says: str
) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    spec = _spec(sandbox=SandboxSpec(egress_allowlist=("pypi.org",)))

    results = run_probes(
        engine=FakeProber(output), cache=cache, spec=spec, nodes={}, ref="i", user=user
    )

    [failed] = [r for r in results if not r.ok]
    assert says in failed.detail


def test_an_allowlist_needing_root_is_a_warning_for_the_default_uid(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    output = "@@probe 4 overlay egress allowlist\n@@out iptables: Permission denied (be root)\n"
    spec = _spec(sandbox=SandboxSpec(egress_allowlist=("pypi.org",)))

    results = run_probes(engine=FakeProber(output), cache=cache, spec=spec, nodes={}, ref="i")

    [egress] = [r for r in results if r.check == "overlay egress allowlist"]
    assert egress.ok
    assert egress.warning
    assert "as uid 12345 iptables cannot set the rules" in egress.detail
    assert "--uid" in egress.detail


def test_an_allowlist_no_host_of_which_resolves_is_a_warning(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    output = "@@probe 0 overlay egress allowlist\n@@out 5 rules in OUTPUT (0 for allowlisted\n"
    spec = _spec(sandbox=SandboxSpec(egress_allowlist=("pypi.org",)))

    results = run_probes(engine=FakeProber(output), cache=cache, spec=spec, nodes={}, ref="i")

    [egress] = [r for r in results if r.check == "overlay egress allowlist"]
    assert egress.ok
    assert egress.warning


@pytest.mark.parametrize(
    ("text", "user"), [("0", (0, 0)), ("1000:1000", (1000, 1000)), ("5:7", (5, 7))]
)
def test_uid_is_uid_or_uid_gid(text: str, user: tuple[int, int]) -> None:
    assert parse_uid(text) == user


@pytest.mark.parametrize("text", ["root", "-1", "1000:", "1:2:3", ""])
def test_a_uid_that_is_not_numeric_is_refused(text: str) -> None:
    with pytest.raises(CheckError, match="--uid"):
        parse_uid(text)


def test_gvisor_checks_run_under_runsc_when_the_engine_has_it(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    fake = FakeProber("@@probe 0 bash\n", runtimes=("runc", "runsc"))

    results = run_probes(
        engine=fake, cache=cache, spec=_spec(sandbox=SandboxSpec(gvisor=True)), nodes={}, ref="i"
    )

    run = fake.calls[0]["confinement"]
    assert isinstance(run, Confinement)
    assert run.runtime == "runsc"
    assert not any(r.warning for r in results)


def test_a_script_that_cannot_run_is_a_check_error(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    fake = FakeProber("exec /bin/sh: no such file or directory\n")

    with pytest.raises(CheckError) as caught:
        run_probes(engine=fake, cache=cache, spec=_spec(), nodes={}, ref="img")

    assert "no such file" in str(caught.value)
    assert caught.value.exit_code == 5


def test_a_failing_program_nobody_asked_for_is_a_warning_the_tools_own_a_failure(
    tmp_path: Path,
) -> None:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    fake = FakeProber(
        "@@found tools.pip mypy mypy\n@@probe 1 tools.pip mypy\n@@out Traceback\n"
        "@@found tools.pip mypy mypyc\n@@probe 1 tools.pip mypyc\n"
        "@@out No module named 'setuptools'\n"
        "@@found tools.pip httpie http\n@@probe 2 tools.pip http\n@@out boom\n"
        "@@found tools.pip ruff ruff\n@@probe 0 tools.pip ruff\n@@out ruff 0.6\n"
    )
    nodes = _nodes()
    nodes["tools.pip"] = NodeLock(
        name="tools.pip",
        kind=NodeKind.TOOLS,
        key="k",
        parents=(),
        inputs={
            "python": "3.11.2",
            "tools": {"mypy": PIP_TOOL, "httpie": PIP_TOOL, "ruff": PIP_TOOL},
        },
    )

    results = run_probes(engine=fake, cache=cache, spec=_spec(), nodes=nodes, ref="img")

    got = {r.check: (r.ok, r.warning) for r in results}
    assert got["tools.pip mypy"] == (False, False)  # the program asked for
    assert got["tools.pip mypyc (mypy)"] == (True, True)  # brought along: a warning
    assert got["tools.pip http (httpie)"] == (False, False)  # no `httpie` program: all count
    assert got["tools.pip ruff"] == (True, False)
    assert "not asked for" in next(r.detail for r in results if r.check.endswith("(mypy)"))


def test_libraries_of_an_installed_pip_tree_are_imported_by_the_images_python() -> None:
    project = {"manager": "pip", "path": "ds", "files": {}, "runtime": "3.11.2", "pins": []}
    deps = {
        "deps.ds": {**project, "mode": "install", "requires": ["numpy", "scikit-learn"]},
        "deps.warm": {**project, "mode": "store", "requires": ["six"]},
    }
    nodes = {
        name: NodeLock(name=name, kind=NodeKind.DEPS, key="k", parents=(), inputs=inputs)
        for name, inputs in deps.items()
    }

    plan = probes.plan_probes(_spec(), nodes)

    imports = [(p.check, p.argv[0], p.argv[-1]) for p in plan.probes if "import" in p.check]
    assert imports == [
        ("deps.ds import numpy", "python3", "numpy"),
        ("deps.ds import scikit-learn", "python3", "scikit-learn"),
    ]
