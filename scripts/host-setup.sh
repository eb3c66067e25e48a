#!/usr/bin/env bash
# Prepare a fresh Debian/Ubuntu machine (as root) for sandbox-builder:
#   - Debian packages: Docker Engine (docker.io), debootstrap, the registry, skopeo, podman and
#     libfaketime, gcc, g++, make (tests),
#     ca-certificates, openssh-server (tests; not started), python3 with venv, qemu-user-static and binfmt-support (to build
#     another platform's image under emulation; binfmt_misc mounted when it is not);
#   - dockerd started in the background when `docker info` fails, and waited for;
#   - a virtualenv at .venv with the package installed (editable) plus its dev tools.
# Safe to run again: every step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v podman >/dev/null || need+=(podman)  # tests/integration/test_podman.py
command -v jq >/dev/null || need+=(jq)
# tests/integration/test_runtime_mirror.py compiles a native addon against node's headers.
command -v cc >/dev/null || need+=(gcc)
command -v c++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
[ -f /usr/include/stdio.h ] || need+=(libc6-dev)
# tests/integration/test_any_day.py moves the clock of build steps with libfaketime.
compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null || need+=(libfaketime)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
command -v python3 >/dev/null || need+=(python3)
# The non-root client test runs the CLI with Debian's python3 (the venv's may be unreadable).
[ -x /usr/bin/python3 ] || need+=(python3)
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
[ -e /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
command -v update-binfmts >/dev/null || need+=(binfmt-support)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# tests/integration/test_ssh_engine.py runs its own sshd on 127.0.0.1; the system's ssh service
# must not start (policy-rc.d 101 while the package installs).
if [ ! -x /usr/sbin/sshd ]; then
  echo "==> installing openssh-server (its service is not started)"
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
  [ -z "$policy" ] || rm -f "$policy"
fi

if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  echo "==> mounting binfmt_misc (QEMU user emulation of other platforms)"
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
fi
if [ -e /proc/sys/fs/binfmt_misc/status ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64 || true
fi

if ! docker info >/dev/null 2>&1; then
  echo "==> starting dockerd (log: /var/log/sandbox-dockerd.log)"
  nohup dockerd >/var/log/sandbox-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/sandbox-dockerd.log" >&2; exit 1; }
fi
echo "==> Docker Engine $(docker version --format '{{.Server.Version}}') is running"

if [ ! -x .venv/bin/sandbox ] || [ pyproject.toml -nt .venv/.installed ]; then
  echo "==> installing sandbox-builder into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip >/dev/null 2>&1
  # (pip's notes about unused local index folders of this machine are filtered out)
  .venv/bin/pip install -q -e '.[dev,bench]' 2> >(grep -v '^WARNING: Location' >&2)
  touch .venv/.installed
fi
# Byte-compile the CLI's own modules, as installing a wheel does and an editable install does
# not: where PYTHONDONTWRITEBYTECODE is set (CI images often set it), every `sandbox` command
# would compile ~120 modules again (75 ms of a 1 s rebuild). Stale ones are redone.
.venv/bin/python -m compileall -q builder >/dev/null
echo "==> ready: .venv/bin/sandbox"
