#!/usr/bin/env bash
# Set up (first time only) and run the tests: the linter (ruff), then unit tests plus every stage on a tiny params
# set, the DVC workflows in scratch projects, and each bench script on a tiny setting (the Ultralytics comparisons
# in their own .venv-bench), and the web page in headless Chromium (web_env.sh: npm packages, Chromium). Markers
# select parts: `bash scripts/test.sh -m "not slow and not bench"`, `-m browser`. pytest runs without -q so that its
# header names the CPU (tests/conftest.py): tiny trainings end differently on Intel and AMD CPUs.
set -euo pipefail
. "$(dirname "$0")/env.sh"
. "$(dirname "$0")/bench_env.sh"
. "$(dirname "$0")/web_env.sh"
. "$(dirname "$0")/cpu_env.sh"
python -m ruff check .
python -m pytest -p no:cacheprovider "$@"
