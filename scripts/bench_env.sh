#!/usr/bin/env bash
# Create .venv-bench (Ultralytics, for the comparisons in bench/), once per change of requirements-bench.txt.
# Sourced by test.sh; source it before `python -m bench.deploy_compare` or `python -m bench.accuracy_compare`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/venv.sh
BENCH_VENV="${LEAFYOLO_BENCH_VENV:-.venv-bench}"
ensure_venv "$BENCH_VENV" requirements-bench.txt
export LEAFYOLO_BENCH_PYTHON="$PWD/$BENCH_VENV/bin/python"
