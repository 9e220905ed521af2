#!/usr/bin/env bash
# Set up (first time only) and rebuild the deployable model: `dvc repro` on the embedded default dataset, then a
# short table of what was built (sizes, mAP50 with 95 % intervals, latency) and the gate's verdict.
set -euo pipefail
. "$(dirname "$0")/env.sh"
. "$(dirname "$0")/web_env.sh" --no-browser  # web/node_modules, for the `web` stage and `dvc plots show`
status=0
dvc repro "$@" || status=$?
python -m pipeline.evaluate.results || true
exit "$status"
