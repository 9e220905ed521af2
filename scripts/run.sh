#!/usr/bin/env bash
# Set up (first time only) and rebuild the deployable model: `dvc repro` on the embedded default dataset.
set -euo pipefail
. "$(dirname "$0")/env.sh"
dvc repro "$@"
dvc metrics show
