#!/usr/bin/env bash
# Sourced by test.sh and run.sh: what the web target needs.
# 1. web/node_modules: `npm ci` in web/ whenever web/package-lock.json changes (a stamp file records what was
#    installed); the `web` stage copies the pinned onnxruntime-web files from there, and the `dvc plots show` page
#    (web/plots/template.html) loads the pinned vega, vega-lite and vega-embed from there.
# 2. Chromium for the browser tests (not with `--no-browser`): when it is missing and this runs as root (as CI does),
#    `apt-get install -y chromium`. Without Chromium and without root the browser tests skip, saying why; with
#    CI=true set they fail instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ensure_web_packages() {
  local stamp
  stamp="web/node_modules/.installed-$(sha256sum web/package-lock.json | cut -c1-16)"
  [ -f "$stamp" ] && return 0
  if ! command -v npm >/dev/null; then
    echo "[setup] npm not found: install Node.js (18 or later) for web/node_modules; the web stage and its tests" \
         "need it" >&2
    return 0
  fi
  echo "[setup] npm ci in web/ (onnxruntime-web and vega as pinned by web/package-lock.json)"
  (cd web && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$stamp"
}

ensure_chromium() {
  local name
  [ -n "${LEAFYOLO_CHROMIUM:-}" ] && return 0
  for name in chromium chromium-browser google-chrome; do
    command -v "$name" >/dev/null && return 0
  done
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing chromium (apt-get) for the browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "[setup] no chromium and not root: the browser tests will be skipped (CI=true: they fail)" >&2
  fi
}

ensure_web_packages
if [ "${1:-}" != "--no-browser" ]; then
  ensure_chromium
fi
