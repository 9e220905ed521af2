#!/usr/bin/env bash
# Set up (first time only) and run the tests: the linter (ruff), then unit tests plus every stage on a tiny params
# set, the DVC workflows in scratch projects, and each bench script on a tiny setting (the Ultralytics comparisons
# in their own .venv-bench). Markers select parts: `bash scripts/test.sh -m "not slow and not bench"`.
set -euo pipefail
. "$(dirname "$0")/env.sh"
. "$(dirname "$0")/bench_env.sh"
python -m ruff check .
python -m pytest -q -p no:cacheprovider "$@"
