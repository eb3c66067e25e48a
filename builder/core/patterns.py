"""Validators for the strings a spec may hold.

Each returns None when the value is acceptable, else a short "problem; fix" phrase that
`tomlread.Table` puts after the value in the error. The patterns are strict on purpose:
package names, versions and user names end up in commands run inside build containers, so
anything that could carry shell syntax is refused here.
"""

from __future__ import annotations

import re

_REPO = re.compile(
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
_HOST = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_REGISTRY = re.compile(rf"{_HOST}(?::[0-9]{{1,5}})?")
_IMAGE_REF = re.compile(
    rf"(?:{_HOST}(?::[0-9]{{1,5}})?/)?{_REPO.pattern}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?"
    r"(?:@sha256:[0-9a-f]{64})?"
)
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_APT = re.compile(r"[a-z0-9][a-z0-9+.-]+(?:=[A-Za-z0-9.+~:*-]+)?")
_PIP = re.compile(
    r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)"
    r"(?:\[[A-Za-z0-9._,-]+\])?"
    r"(?:\s*(?:===|==|~=|!=|>=|<=|<|>)\s*[A-Za-z0-9.*+!-]+"
    r"(?:\s*,\s*(?:===|==|~=|!=|>=|<=|<|>)\s*[A-Za-z0-9.*+!-]+)*)?"
)
_NPM = re.compile(
    r"(?P<name>(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*)"
    r"(?:@(?P<range>[A-Za-z0-9.*^~<>=|+ -]+))?"
)
_RUNTIME_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+){0,2}")
_LOOSE_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~_-]*")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOOL = re.compile(r"[a-z0-9][a-z0-9._-]*")
_SUITE = re.compile(r"[a-z]+(?:-[a-z]+)?")
_URL = re.compile(r"https?://[^\s\"'`$;|&<>\\]+")  # no quotes or shell syntax
PLATFORMS = ("linux/amd64", "linux/arm64")


def _matches(pattern: re.Pattern[str], value: str, problem: str) -> str | None:
    return None if pattern.fullmatch(value) else problem


def repository(value: str) -> str | None:
    return _matches(_REPO, value, "is not a repository name; use lowercase like acme/agent-sandbox")


def registry(value: str) -> str | None:
    return _matches(_REGISTRY, value, "is not a registry; use host[:port] like 127.0.0.1:5000")


def image_ref(value: str) -> str | None:
    return _matches(_IMAGE_REF, value, "is not an image reference; e.g. debian:bookworm-slim")


def user_name(value: str) -> str | None:
    if value == "root":
        return 'is root; the sandbox runs as a non-root user: use e.g. user = "agent"'
    return _matches(_USER, value, "is not a user name; use lowercase letters, digits, - and _")


def apt_package(value: str) -> str | None:
    return _matches(
        _APT, value, "is not a Debian package; write name or name=version (glob * allowed)"
    )


def pip_requirement(value: str) -> str | None:
    """A PEP 508 requirement as pip reads it (packaging's parser), and on top of that only a
    name, extras and version specifiers in shell-safe characters: no URL, marker or option."""
    problem = _matches(
        _PIP, value.strip(), "is not a PEP 508 requirement; e.g. ruff or ruff==0.6.*"
    )
    if problem is None and _requirement_name(value) is None:
        problem = "is not a valid PEP 508 requirement, so pip would refuse it; e.g. ruff==0.6.*"
    return problem


def pip_name(value: str) -> str:
    """The normalized project name of a pip requirement (PEP 503)."""
    from packaging.utils import canonicalize_name  # here: ~17 ms to import, few specs need it

    name = _requirement_name(value)
    if name is None:  # not valid (the spec refuses it): the name as our pattern reads it
        match = _PIP.fullmatch(value.strip())
        name = match.group("name") if match else value
    return str(canonicalize_name(name))


def _requirement_name(value: str) -> str | None:
    """The project name of PEP 508 requirement `value` as written, or None if it is not one."""
    from packaging.requirements import InvalidRequirement, Requirement  # ~50 ms to import

    try:
        return Requirement(value).name
    except InvalidRequirement:
        return None


def npm_spec(value: str) -> str | None:
    return _matches(_NPM, value, "is not an npm spec; write name, name@range or @scope/name@range")


def npm_name(value: str) -> str:
    match = _NPM.fullmatch(value)
    return match.group("name") if match else value


def runtime_version(value: str) -> str | None:
    return _matches(_RUNTIME_VERSION, value, 'is not a version; write e.g. "22" or "3.12"')


def loose_version(value: str) -> str | None:
    return _matches(_LOOSE_VERSION, value, "is not a version; e.g. 1.31.0")


def env_name(value: str) -> str | None:
    return _matches(_ENV, value, "is not an environment variable name; e.g. DATABASE_URL")


def tool_name(value: str) -> str | None:
    return _matches(_TOOL, value, "is not a valid name; use lowercase letters, digits, . _ -")


def suite(value: str) -> str | None:
    return _matches(_SUITE, value, "is not a Debian suite; e.g. bookworm")


def platform(value: str) -> str | None:
    return None if value in PLATFORMS else f"is not a known platform; use one of {PLATFORMS}"


def abs_path(value: str) -> str | None:
    if not value.startswith("/") or "\x00" in value or "\n" in value or "/../" in value + "/":
        return "is not an absolute path; write e.g. /workspace"
    return None


def relative_path(value: str) -> str | None:
    if value.startswith("/") or ".." in value.split("/") or not value or "\x00" in value:
        return "must be a path inside the project, relative to sandbox.toml"
    return None


def http_url(value: str) -> str | None:
    return _matches(_URL, value, "is not an http(s) URL")


def download_url(value: str) -> str | None:
    return _matches(
        _URL,
        value,
        "is not an http(s) URL; {version} and {arch} are filled in",
    )


def hostname(value: str) -> str | None:
    return _matches(re.compile(_HOST), value, "is not a host name; e.g. registry.npmjs.org")


def network_name(value: str) -> str | None:
    return _matches(re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*"), value, "is not a network name")


def mount(value: str) -> str | None:
    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(p.startswith("/") for p in parts[:2]):
        return "is not a mount; write /host/path:/container/path[:ro]"
    if len(parts) == 3 and parts[2] not in ("ro", "rw"):
        return "has an unknown mode; end it with :ro or :rw"
    return None
