#!/usr/bin/env bash
# Set up (first time only) and run the tests: unit tests plus every stage on a tiny params set, and each bench
# script on a tiny setting (the Ultralytics comparisons in their own .venv-bench).
set -euo pipefail
. "$(dirname "$0")/env.sh"
. "$(dirname "$0")/bench_env.sh"
python -m pytest -q -p no:cacheprovider "$@"
