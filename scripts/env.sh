#!/usr/bin/env bash
# Sourced by run.sh and test.sh: create .venv and install the pinned dependencies and the project, once per
# change of requirements.txt / pyproject.toml, then activate it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/venv.sh
VENV="${LEAFYOLO_VENV:-.venv}"
ensure_venv "$VENV" requirements.txt .
. "$VENV/bin/activate"
