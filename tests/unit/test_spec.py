"""sandbox.toml parsing (builder/model/spec.py): valid specs, and a corpus of malformed ones."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from builder.core.errors import SpecError
from builder.model.spec import (
    BaseSpec,
    BinaryTool,
    Bootstrap,
    DepManager,
    DepMode,
    DepSpec,
    ImageSpec,
    Provider,
    RuntimeSpec,
    SandboxSpec,
    Spec,
    ToolsSpec,
)
from builder.model.specfile import load_spec
from tests.unit.clirun import sandbox
from tests.unit.spec_corpus import CASES, VALID

EMPTY_JSON = hashlib.sha256(b"{}\n").hexdigest()  # what make_project writes in each file

FULL = """\
[image]
name = "acme/agent-sandbox"
registry = "127.0.0.1:5000"
platforms = ["linux/amd64"]
user = "agent"
workdir = "/workspace"
env = { LANG = "C.UTF-8" }

[base]
image = "debian:bookworm-slim"

[system]
packages = ["git", "ripgrep", "jq", "curl", "ca-certificates", "iptables", "libvips-dev=8.14.*"]

[runtimes]
node = "22"
python = { version = "3.12", provider = "official" }
go = { version = "1.23", provider = "apt" }

[tools]
pip = ["poetry", "ruff==0.6.*", "mypy"]
npm = ["@openai/codex", "turbo", "@vercel/ncc"]
[tools.bin.kubectl]
version = "1.31.0"
url = "https://dl.k8s.io/release/v{version}/bin/linux/{arch}/kubectl"

[deps.web]
manager = "pnpm"
path = "web"
mode = "store"
mount = "/workspace/web/node_modules"

[sandbox]
gvisor = false
egress_allowlist = ["registry.npmjs.org", "api.github.com"]
env_passthrough = ["DATABASE_URL"]
extra_mounts = ["/home/user/.cache/pip:/home/agent/.cache/pip:ro"]
"""


def make_project(root: Path) -> Path:
    """A project folder with the dependency folders the corpus refers to; returns it."""
    project = root / "project"
    for folder, files in (
        (project / "web", ("package.json", "pnpm-lock.yaml")),
        (project / "api", ("package.json",)),
        (root / "outside", ("package.json", "pnpm-lock.yaml")),
    ):
        folder.mkdir(parents=True)
        for name in files:
            (folder / name).write_text("{}\n")
    (project / "escape").symlink_to(root / "outside", target_is_directory=True)
    return project


def write_spec(project: Path, content: str | bytes) -> Path:
    path = project / "sandbox.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def spec_error(path: Path) -> str:
    """The message load_spec gives for `path`, which must be a SpecError with exit code 2."""
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.exit_code == 2
    return str(caught.value)


# -- valid specs --------------------------------------------------------------------------


def test_the_documented_example_parses_into_the_expected_spec(tmp_path: Path) -> None:
    path = write_spec(make_project(tmp_path), FULL)

    spec = load_spec(path)

    assert spec == Spec(
        path=path,
        image=ImageSpec(
            name="acme/agent-sandbox",
            registry="127.0.0.1:5000",
            platforms=("linux/amd64",),
            user="agent",
            workdir="/workspace",
            env={"LANG": "C.UTF-8"},
        ),
        base=BaseSpec(image="debian:bookworm-slim"),
        system_packages=(
            "git",
            "ripgrep",
            "jq",
            "curl",
            "ca-certificates",
            "iptables",
            "libvips-dev=8.14.*",
        ),
        runtimes=(
            RuntimeSpec(name="go", version="1.23", provider=Provider.APT),
            RuntimeSpec(name="node", version="22", provider=Provider.OFFICIAL),
            RuntimeSpec(name="python", version="3.12", provider=Provider.OFFICIAL),
        ),
        tools=ToolsSpec(
            pip=("poetry", "ruff==0.6.*", "mypy"),
            npm=("@openai/codex", "turbo", "@vercel/ncc"),
            bin=(
                BinaryTool(
                    name="kubectl",
                    version="1.31.0",
                    url="https://dl.k8s.io/release/v{version}/bin/linux/{arch}/kubectl",
                ),
            ),
        ),
        deps=(
            DepSpec(
                name="web",
                manager=DepManager.PNPM,
                path="web",
                mode=DepMode.STORE,
                mount="/workspace/web/node_modules",
                files={"package.json": EMPTY_JSON, "pnpm-lock.yaml": EMPTY_JSON},
            ),
        ),
        sandbox=SandboxSpec(
            gvisor=False,
            egress_allowlist=("registry.npmjs.org", "api.github.com"),
            env_passthrough=("DATABASE_URL",),
            extra_mounts=("/home/user/.cache/pip:/home/agent/.cache/pip:ro",),
        ),
    )
    assert spec.project_dir == path.parent


def test_minimal_spec_gets_the_documented_defaults(tmp_path: Path) -> None:
    path = write_spec(tmp_path, VALID)

    spec = load_spec(path)

    assert spec.image == ImageSpec(name="acme/sandbox", inherit=("user", "workdir"))
    assert spec.image.user == "agent"
    assert spec.image.uid == 1000
    assert spec.image.workdir == "/workspace"
    assert spec.image.platforms == ("linux/amd64",)
    assert spec.system_packages == ()
    assert spec.runtimes == ()
    assert spec.tools == ToolsSpec()
    assert spec.deps == ()
    assert spec.sandbox == SandboxSpec()


def test_bootstrap_base_fills_in_mirror_and_variant(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        '[image]\nname = "acme/sandbox"\n[base]\nbootstrap = { suite = "bookworm" }\n',
    )

    spec = load_spec(path)

    assert spec.base == BaseSpec(
        bootstrap=Bootstrap(
            suite="bookworm", mirror="http://deb.debian.org/debian", variant="minbase"
        )
    )
    assert spec.base.image is None


def test_bootstrap_base_as_a_table_with_its_own_mirror(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        '[image]\nname = "acme/sandbox"\n'
        '[base.bootstrap]\nsuite = "trixie"\nmirror = "https://mirror.example/debian"\n'
        'variant = "buildd"\n',
    )

    assert load_spec(path).base.bootstrap == Bootstrap(
        suite="trixie", mirror="https://mirror.example/debian", variant="buildd"
    )


def test_runtime_shorthand_and_table_forms_are_equivalent(tmp_path: Path) -> None:
    short = write_spec(tmp_path, VALID + '[runtimes]\nnode = "22"\n')
    short_runtimes = load_spec(short).runtimes
    table = write_spec(tmp_path, VALID + '[runtimes.node]\nversion = "22"\n')

    assert load_spec(table).runtimes == short_runtimes
    assert short_runtimes == (RuntimeSpec(name="node", version="22", provider=Provider.OFFICIAL),)


def test_runtime_table_with_pypi_provider_and_mirror(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        VALID + '[runtimes]\npython = { version = "3.12.4", provider = "pypi", '
        'mirror = "https://mirror.example/python" }\n',
    )

    assert load_spec(path).runtimes == (
        RuntimeSpec(
            name="python",
            version="3.12.4",
            provider=Provider.PYPI,
            mirror="https://mirror.example/python",
        ),
    )


def test_binary_tool_from_a_project_path_with_its_own_binary_name(tmp_path: Path) -> None:
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "helm.tar.gz").write_bytes(b"archive")
    path = write_spec(
        tmp_path,
        VALID + '[tools.bin.helm]\nversion = "3.15.2"\npath = "vendor/helm.tar.gz"\n'
        'bin = "helm"\nauth_env = "HELM_TOKEN"\n',
    )

    assert load_spec(path).tools.bin == (
        BinaryTool(
            name="helm",
            version="3.15.2",
            path="vendor/helm.tar.gz",
            binary="helm",
            auth_env="HELM_TOKEN",
            file_sha256=hashlib.sha256(b"archive").hexdigest(),
        ),
    )


def test_a_missing_or_replaced_project_archive(tmp_path: Path) -> None:
    spec = VALID + '[tools.bin.helm]\nversion = "3.15.2"\npath = "vendor/helm.tar.gz"\n'
    path = write_spec(tmp_path, spec)
    message = spec_error(path)
    assert "`tools.bin.helm.path`" in message
    assert "cannot be read" in message
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "helm.tar.gz").write_bytes(b"one")
    before = load_spec(path).spec_hash()
    (tmp_path / "vendor" / "helm.tar.gz").write_bytes(b"two")
    assert load_spec(path).spec_hash() != before


def test_deps_of_each_manager_with_their_lockfiles(tmp_path: Path) -> None:
    for folder, files in (
        ("web", ("package.json", "pnpm-lock.yaml")),
        ("admin", ("package.json", "package-lock.json")),
        ("svc", ("pyproject.toml", "uv.lock")),
        ("jobs", ("requirements.txt",)),
    ):
        (tmp_path / folder).mkdir()
        for name in files:
            (tmp_path / folder / name).write_text("\n")
    path = write_spec(
        tmp_path,
        VALID
        + '[deps.web]\nmanager = "pnpm"\npath = "web"\n'
        + '[deps.admin]\nmanager = "npm"\npath = "admin"\nmode = "install"\n'
        + '[deps.svc]\nmanager = "uv"\npath = "svc"\n'
        + '[deps.jobs]\nmanager = "pip"\npath = "jobs"\n',
    )

    newline = hashlib.sha256(b"\n").hexdigest()
    assert load_spec(path).deps == (
        DepSpec(
            name="admin",
            manager=DepManager.NPM,
            path="admin",
            mode=DepMode.INSTALL,
            files={"package.json": newline, "package-lock.json": newline},
        ),
        DepSpec(
            name="jobs", manager=DepManager.PIP, path="jobs", files={"requirements.txt": newline}
        ),
        DepSpec(
            name="svc",
            manager=DepManager.UV,
            path="svc",
            files={"pyproject.toml": newline, "uv.lock": newline},
        ),
        DepSpec(
            name="web",
            manager=DepManager.PNPM,
            path="web",
            mode=DepMode.STORE,
            files={"package.json": newline, "pnpm-lock.yaml": newline},
        ),
    )


def test_a_changed_project_lockfile_changes_the_spec_hash(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "package.json").write_text("{}")
    (tmp_path / "web" / "pnpm-lock.yaml").write_text("lockfileVersion: '9.0'\n")
    path = write_spec(tmp_path, VALID + '[deps.web]\nmanager = "pnpm"\npath = "web"\n')
    before = load_spec(path).spec_hash()
    (tmp_path / "web" / "pnpm-lock.yaml").write_text("lockfileVersion: '9.0'\n# changed\n")
    assert load_spec(path).spec_hash() != before


def test_sandbox_table_with_security_resources_and_network(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        VALID
        + '[sandbox]\nnetwork = "agents-net"\n'
        + "[sandbox.security]\ngvisor = true\nno_new_privileges = true\n"
        + 'drop_capabilities = true\nseccomp_profile = "/etc/docker/seccomp.json"\n'
        + '[sandbox.resources]\nmemory = "4g"\ncpus = 2\n'
        + '[sandbox.logs]\ndriver = "local"\nmax_size = "10m"\nmax_file = 5\n',
    )

    assert load_spec(path).sandbox == SandboxSpec(
        gvisor=True,
        network="agents-net",
        no_new_privileges=True,
        drop_capabilities=True,
        seccomp_profile="/etc/docker/seccomp.json",
        resources={"cpus": "2", "memory": "4g"},
        logs={"driver": "local", "max_size": "10m", "max_file": 5},
    )


@pytest.mark.parametrize("value", ['["ALL"]', "[]"])
def test_drop_capabilities_as_a_list_is_an_error_saying_risoluto_reads_a_boolean(
    tmp_path: Path, value: str
) -> None:
    path = write_spec(tmp_path, VALID + f"[sandbox.security]\ndrop_capabilities = {value}\n")

    with pytest.raises(SpecError) as caught:
        load_spec(path)

    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert "`sandbox.security.drop_capabilities`" in message
    assert "must be true or false, not a list" in message
    assert "--cap-drop=ALL" in message


def test_crlf_line_endings_are_accepted(tmp_path: Path) -> None:
    path = write_spec(tmp_path, VALID.replace("\n", "\r\n"))

    assert load_spec(path).image.name == "acme/sandbox"


def test_spec_hash_ignores_what_does_not_change_the_lock(tmp_path: Path) -> None:
    before = load_spec(write_spec(tmp_path, VALID + '[system]\npackages = ["git"]\n'))
    renamed = load_spec(
        write_spec(
            tmp_path,
            VALID.replace("acme/sandbox", "acme/other")
            + '[system]\npackages = ["git"]\n[sandbox]\ngvisor = true\n',
        )
    )
    more = load_spec(write_spec(tmp_path, VALID + '[system]\npackages = ["git", "jq"]\n'))

    assert renamed.spec_hash() == before.spec_hash()
    assert more.spec_hash() != before.spec_hash()
    assert before.spec_hash().startswith("sha256:")


# -- errors say what to do ----------------------------------------------------------------


def test_misspelt_key_suggests_the_right_one_with_its_line(tmp_path: Path) -> None:
    path = write_spec(tmp_path, VALID + '\n[system]\npakages = ["git"]\n')

    message = spec_error(path)

    assert message.startswith(f"{path}:7: `system.pakages`: unknown key")
    assert "Did you mean `packages`?" in message


def test_camel_case_key_suggests_snake_case(tmp_path: Path) -> None:
    path = write_spec(tmp_path, VALID + '[sandbox]\nextraMounts = ["/a:/b"]\n')

    assert "write `extra_mounts`" in spec_error(path)


def test_unquoted_runtime_version_says_to_quote_it(tmp_path: Path) -> None:
    path = write_spec(tmp_path, VALID + "[runtimes]\nnode = 22\n")

    assert 'node = "22"' in spec_error(path)


def test_deps_folder_without_its_lockfile_names_the_missing_file(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    path = write_spec(project, VALID + '[deps.web]\nmanager = "pnpm"\npath = "api"\n')

    assert "has no pnpm-lock.yaml" in spec_error(path)


def test_duplicate_key_error_quotes_the_line_and_says_it_is_set_twice(tmp_path: Path) -> None:
    path = write_spec(tmp_path, VALID + '[system]\npackages = ["git"]\npackages = ["jq"]\n')

    message = spec_error(path)

    assert '`packages = ["jq"]`' in message
    assert "set twice" in message


def test_missing_file_and_a_folder_are_spec_errors(tmp_path: Path) -> None:
    assert "not found" in spec_error(tmp_path / "sandbox.toml")
    (tmp_path / "dir.toml").mkdir()
    assert "cannot read" in spec_error(tmp_path / "dir.toml")


# -- the malformed corpus -----------------------------------------------------------------

IDS = [case[0] for case in CASES]


def test_corpus_is_large_and_its_ids_unique() -> None:
    assert len(CASES) >= 45
    assert len(set(IDS)) == len(IDS)


def test_corpus_base_spec_is_valid(tmp_path: Path) -> None:
    """Each case breaks VALID in one place, so VALID itself (in the same project) must load."""
    path = write_spec(make_project(tmp_path), VALID)

    assert load_spec(path).image.name == "acme/sandbox"


@pytest.mark.parametrize(("content", "expected"), [c[1:] for c in CASES], ids=IDS)
def test_malformed_spec_is_refused_naming_file_and_key(
    tmp_path: Path, content: str | bytes, expected: str
) -> None:
    path = write_spec(make_project(tmp_path), content)

    message = spec_error(path)

    assert str(path) in message
    # The temporary path holds the test id; look for the key in the rest of the message.
    assert expected in message.replace(str(path), "<spec>")


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(("content", "expected"), [c[1:] for c in CASES], ids=IDS)
def test_cli_lock_refuses_malformed_spec_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | bytes, expected: str
) -> None:
    path = write_spec(make_project(tmp_path), content)
    monkeypatch.chdir(tmp_path)
    before = _listing(tmp_path)

    done = sandbox("-f", path, "lock", env={"SANDBOX_CACHE_DIR": None})

    assert done.exit_code == 2, done.stderr
    assert str(path) in done.stderr
    assert expected in done.stderr.replace(str(path), "<spec>")
    assert not (path.parent / "sandbox.lock").exists()
    assert _listing(tmp_path) == before


def test_require_signed_needs_a_public_key_and_changes_no_spec_hash(tmp_path: Path) -> None:
    path = write_spec(tmp_path, VALID)
    before = load_spec(path).spec_hash()
    signed = VALID.replace("[image]\n", '[image]\nrequire_signed = true\npublic_key = "k.pub"\n')
    assert signed != VALID
    spec = load_spec(write_spec(tmp_path, signed))
    assert spec.image.require_signed
    assert spec.image.public_key == tmp_path / "k.pub"
    assert spec.spec_hash() == before  # what is locked and built is the same
    message = spec_error(
        write_spec(tmp_path, VALID.replace("[image]\n", "[image]\nrequire_signed = true\n"))
    )
    assert "`image.require_signed`" in message
    assert "public_key" in message
