#!/usr/bin/env bash
# Sourced by run.sh and test.sh: create .venv and install the pinned dependencies and the project, once per
# change of requirements.txt / pyproject.toml (a stamp file records what was installed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${LEAFYOLO_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  python3.11 -m venv "$VENV" 2>/dev/null || python3 -m venv "$VENV"
fi
. "$VENV/bin/activate"
stamp="$VENV/.installed-$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[setup] installing pinned dependencies into $VENV (a few minutes the first time)"
  python -m pip install -q --disable-pip-version-check -r requirements.txt
  python -m pip install -q --disable-pip-version-check --no-deps -e .
  touch "$stamp"
fi
