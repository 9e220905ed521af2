#!/usr/bin/env bash
# Set up (first time only) and run the tests: unit tests plus every stage on a tiny params set.
set -euo pipefail
. "$(dirname "$0")/env.sh"
python -m pytest -q -p no:cacheprovider "$@"
