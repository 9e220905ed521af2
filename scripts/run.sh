#!/usr/bin/env bash
# Set up (first time only) and rebuild the deployable model: `dvc repro` on the embedded default dataset, then a
# short table of what was built (sizes, mAP50 with 95 % intervals, latency) and the gate's verdict.
set -euo pipefail
. "$(dirname "$0")/env.sh"
status=0
dvc repro "$@" || status=$?
python -m pipeline.evaluate.results || true
exit "$status"
