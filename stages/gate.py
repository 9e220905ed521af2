"""Stage `gate`: exit non-zero unless the INT8 TFLite is under `gate.max_bytes`, its mAP50 is at least
`gate.min_map50`, its mAP50 drop from the FP32 fine-tuned model is at most `gate.max_int8_drop` and it keeps at
least `gate.min_int8_retention` of that FP32 mAP50, and TensorFlow Lite Micro runs it in a tensor arena of at most
`gate.max_arena_bytes`.
`gate.json` (every figure and verdict) is written before the exit."""

from __future__ import annotations

import sys

from pipeline.config.params import load_section
from pipeline.config.stages import GateParams
from pipeline.evaluate.gate import check_budgets, describe, failure_message
from pipeline.io.jsonio import read_json, write_json
from pipeline.stage.steps import stage_args


def main() -> int:
    args = stage_args(__doc__, ("metrics", "metrics JSON of the evaluate stage"), ("out", "gate.json to write"))
    p = load_section(args.params, "gate", GateParams)
    final = read_json(args.metrics)["final"]
    verdict = check_budgets(final, p)
    write_json(args.out, verdict)
    if not verdict["passed"]:
        print(failure_message(verdict), file=sys.stderr)
        return 1
    print("gate passed: " + ", ".join(describe(k, c) for k, c in verdict["checks"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
