"""`build --apply` twice to a server that behaves as Risoluto does: the second, smaller spec
removes what the first set, and nothing of the operator's (issue 18).

The image is the session's bootstrapped base (same [image] and [base] as the base_image
fixture, so every node is cached): [sandbox] is not part of what is locked, so changing it
rebuilds nothing and only rewrites the overlay.
"""

from __future__ import annotations

import pytest

from builder.orchestrator import applied
from tests.integration import risoluto_server
from tests.integration.conftest import BOOTSTRAP_BASE, Project

pytestmark = pytest.mark.docker

BASE = BOOTSTRAP_BASE.format(name="sandbox-test/base")
FULL = """
[sandbox]
extra_mounts = ["/srv/cache/pip:/home/agent/.cache/pip:ro"]
env_passthrough = ["DATABASE_URL"]
egress_allowlist = ["pypi.org"]
network = "agents"

[sandbox.security]
drop_capabilities = true
no_new_privileges = true
seccomp_profile = "/etc/docker/seccomp.json"

[sandbox.resources]
cpus = "1.5"
memory_swap = "8g"

[sandbox.logs]
max_size = "10m"
max_file = 2
"""
SMALLER = """
[sandbox]
env_passthrough = ["DATABASE_URL"]

[sandbox.security]
drop_capabilities = false
"""
OPERATOR = {"codex": {"model": "o3", "sandbox": {"resources": {"memory": "6g"}}}}


def test_a_smaller_spec_removes_what_the_full_one_set_and_leaves_the_operators_keys(
    project: Project, base_image: str
) -> None:
    url, server, stop = risoluto_server.start(overlay=OPERATOR)
    try:
        project.write(BASE + FULL)
        project.ok("lock")
        # Docker refuses a memory limit over Risoluto's default --memory-swap 4g: said at lock.
        project.write(BASE + FULL.replace('memory_swap = "8g"', 'memory = "8g"'))
        warned = project.ok("lock", "--check")
        assert "memory = '8g' with memory_swap = '4g' (Risoluto's default)" in warned.err
        project.write(BASE + FULL)
        first = project.ok("build", "--apply", url)
        assert "applied: " in first.out
        sandbox = server.overlay["codex"]["sandbox"]
        assert sandbox["security"]["drop_capabilities"] is True
        assert sandbox["network"] == "agents"
        assert sandbox["resources"] == {"memory": "6g", "cpus": "1.5", "memory_swap": "8g"}
        assert sandbox["logs"] == {"max_size": "10m", "max_file": 2}
        effect = server.in_effect()
        assert effect["image"] == base_image
        assert effect["extra_mounts"] == ["/srv/cache/pip:/home/agent/.cache/pip:ro"]
        assert effect["logs.max_file"] == 2

        project.write(BASE + SMALLER)
        project.ok("build")
        dry = project.ok("overlay", "apply", url, "--dry-run")
        assert "would remove codex.sandbox.egress_allowlist, codex.sandbox.extra_mounts" in dry.out
        second = project.ok("overlay", "apply", url)

        assert "removed codex.sandbox.egress_allowlist, codex.sandbox.extra_mounts" in second.out
        sent = {
            "image": base_image,
            "env_passthrough": ["DATABASE_URL"],
            "security": {"gvisor": False, "drop_capabilities": False},
        }
        assert server.overlay == {
            "codex": {"model": "o3", "sandbox": {**sent, "resources": {"memory": "6g"}}},
            # what the next apply, from any checkout, removes:
            **applied.record({"codex": {"sandbox": sent}}),
        }
        effect = server.in_effect()
        assert effect["extra_mounts"] == []
        assert effect["network"] == ""
        assert effect["egress_allowlist"] == []
        assert effect["security.seccomp_profile"] == ""
        assert effect["security.drop_capabilities"] is False
        assert effect["resources.cpus"] == "2.0"  # Risoluto's default again
        assert effect["resources.memory"] == "6g"  # the operator's
        assert effect["logs.max_file"] == 3

        # A list is what Risoluto silently replaces by its default: refused before anything.
        project.write(BASE + SMALLER.replace("= false", '= ["ALL"]'))
        requests = len(server.requests)
        refused = project.sandbox("build", "--apply", url)
        assert refused.code == 2, refused.err
        assert "`sandbox.security.drop_capabilities`" in refused.err
        assert "must be true or false, not a list" in refused.err
        assert len(server.requests) == requests
    finally:
        stop()
