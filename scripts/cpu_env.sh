#!/usr/bin/env bash
# Sourced by test.sh: qemu-user, for the test that runs training stages on an emulated AMD EPYC and compares their
# bytes with a native run (tests/test_kernels.py; pipeline/common/kernels.py says why they can differ). Installed with
# apt-get when missing and this runs as root (as CI does); otherwise that test skips, saying why (CI=true: it fails).
set -euo pipefail

ensure_qemu_user() {
  command -v qemu-x86_64 >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing qemu-user (apt-get) for the cross-CPU reproducibility test"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user >/dev/null
  else
    echo "[setup] no qemu-x86_64 and not root: the cross-CPU test will be skipped (CI=true: it fails)" >&2
  fi
}

ensure_qemu_user
