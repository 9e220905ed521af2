#!/usr/bin/env bash
# Create .venv-bench (Ultralytics for the comparisons in bench/), once per change of requirements-bench.txt.
# Sourced by test.sh; run it directly before `python -m bench.deploy_compare` or `python -m bench.bccd_compare`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BENCH_VENV="${LEAFYOLO_BENCH_VENV:-.venv-bench}"
if [ ! -x "$BENCH_VENV/bin/python" ]; then
  echo "[setup] creating $BENCH_VENV (Ultralytics, for bench/ comparisons)"
  python3.11 -m venv "$BENCH_VENV" 2>/dev/null || python3 -m venv "$BENCH_VENV"
fi
bench_stamp="$BENCH_VENV/.installed-$(sha256sum requirements-bench.txt | cut -c1-16)"
if [ ! -f "$bench_stamp" ]; then
  echo "[setup] installing requirements-bench.txt into $BENCH_VENV (a few minutes the first time)"
  "$BENCH_VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements-bench.txt
  touch "$bench_stamp"
fi
export LEAFYOLO_BENCH_PYTHON="$PWD/$BENCH_VENV/bin/python"
