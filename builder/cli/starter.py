"""The starter sandbox.toml that `sandbox init` writes."""

STARTER = """\
# sandbox.toml: the sandbox image your coding agents run in.
# `sandbox lock` pins every version into sandbox.lock; `sandbox build` builds it.

[image]
name = "my-team/agent-sandbox"     # repository name of the built image
user = "agent"                     # non-root user (uid 1000); never root
workdir = "/workspace"
env = { LANG = "C.UTF-8" }

[base]
# Built from Debian packages with debootstrap: needs no registry.
bootstrap = { suite = "bookworm" }
# Or an image, pinned to its digest by `sandbox lock`:
# image = "debian:bookworm-slim"

[system]                           # Debian packages, full closure pinned by apt
packages = ["git", "jq", "ca-certificates", "curl"]
# docs = true                       # keep docs, man pages, translations (default: slim)

[sandbox]                          # copied into the orchestrator overlay
gvisor = false
# egress_allowlist = ["registry.npmjs.org"]
# env_passthrough = ["DATABASE_URL"]
"""
