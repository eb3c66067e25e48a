#!/usr/bin/env bash
# What a CI job does with a sandbox: check the lock, build, push, report the image.
#
# The logic of action.yml (the GitHub composite action) and of the GitLab CI job in
# docs/ci.md; the test suite runs it for real against a local registry
# (tests/integration/test_ci_build.py). Inputs are environment variables:
#   SANDBOX_FILE       the spec (default: sandbox.toml found as the commands find it)
#   SANDBOX_PUSH       "true" (default) pushes to [image].registry; "false" builds only
#   SANDBOX_CACHE_DIR  the cache dir (read by sandbox itself; default cache/ beside the spec)
#   SANDBOX_COMMAND    how to run the tool (default: sandbox)
# The engine and the registry login are the runner's: DOCKER_HOST, ~/.docker/config.json
# (what docker/login-action writes).
#
# Outputs, one `name=value` line each on stdout, and appended to $GITHUB_OUTPUT when set:
#   digest    the pushed manifest's digest (sha256:...; empty when not pushed)
#   ref       what the overlay pins: <registry>/<name>@<digest> when pushed, else the image ID
#   image-id  the image's config digest (a function of sandbox.lock alone)
#   overlay   the path of the orchestrator overlay the build wrote
#
# Exit codes are sandbox's: 3 when sandbox.lock is missing or stale (run `sandbox lock` and
# commit it), 5 for a failed build, 7 for a registry error (DESIGN.md §10).
set -euo pipefail

if [[ -z "${SANDBOX_CACHE_DIR:-}" ]]; then
    unset SANDBOX_CACHE_DIR  # an action input left empty: the default, beside the spec
fi
read -r -a sandbox <<<"${SANDBOX_COMMAND:-sandbox}"
spec=()
if [[ -n "${SANDBOX_FILE:-}" ]]; then
    spec=(-f "$SANDBOX_FILE")
fi
build=(build --json)
case "${SANDBOX_PUSH:-true}" in
    true) build+=(--push) ;;
    false) ;;
    *)
        echo "error: SANDBOX_PUSH is '${SANDBOX_PUSH}'; say true or false" >&2
        exit 2
        ;;
esac

"${sandbox[@]}" "${spec[@]}" lock --check >&2  # stdout is for the outputs
result=$("${sandbox[@]}" "${spec[@]}" "${build[@]}")

outputs=$(
    python3 - "$result" <<'EOF'
import json
import sys

image = json.loads(sys.argv[1])
ref = image["image"]["ref"]
print(f"digest={ref.rpartition('@')[2] if '@' in ref else ''}")
print(f"ref={ref}")
print(f"image-id={image['image']['id']}")
print(f"overlay={image['overlay']}")
EOF
)
echo "$outputs"
if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
    echo "$outputs" >>"$GITHUB_OUTPUT"
fi
