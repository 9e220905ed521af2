"""The end of a run in a few lines a person can read: each artifact's size, mAP50 with its 95 % interval and
latency, then the gate's verdict with every budget. `scripts/run.sh` prints it after `dvc repro`.

    python -m pipeline.evaluate.results [--root .]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pipeline.evaluate.gate import describe

LABELS = {"distill": "student, distilled (torch FP32)", "prune": "pruned (torch FP32)",
          "finetune": "pruned + fine-tuned (torch FP32)", "onnx_fp32": "ONNX FP32 (onnxruntime)",
          "onnx_fp16": "ONNX FP16 (onnxruntime)", "onnx_int8": "ONNX INT8 QDQ, NNCF (onnxruntime)",
          "tflite_int8": "TFLite full INT8 (LiteRT)"}


def read_metrics(root: Path, stage: str, name: str = "metrics.json") -> dict[str, Any]:
    path = root / "artifacts" / stage / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dvc repro` first")
    return json.loads(path.read_text())


def interval(figures: dict[str, Any], key: str = "map50") -> str:
    """`0.512 [0.498, 0.526]`, or the bare value when the run computed no interval."""
    if f"{key}_ci_low" not in figures:
        return f"{figures[key]:.3f}"
    return f"{figures[key]:.3f} [{figures[f'{key}_ci_low']:.3f}, {figures[f'{key}_ci_high']:.3f}]"


def artifact_rows(root: Path) -> list[dict[str, Any]]:
    """One row per evaluated artifact, in chain order: label, params, bytes, mAP50/mAP50-95 (+ interval), ms."""
    figures = read_metrics(root, "evaluate")["artifacts"]
    alone = (root / "artifacts" / "distill" / "metrics.json").is_file() and read_metrics(root, "distill").get("alpha", 1) == 0
    labels = {**LABELS, "distill": "student, trained alone (torch FP32)"} if alone else LABELS
    return [{"name": name, "label": labels[name], **figures[name]} for name in LABELS if name in figures]


def micro_line(micro: dict[str, Any]) -> str:
    """The INT8 TFLite under TensorFlow Lite Micro in one line."""
    ref = micro["litert_reference"]
    same = (f"bit-identical to LiteRT's reference kernels on {ref['images']} images" if ref["identical"] else
            f"DIFFERS from LiteRT's reference kernels by up to {ref['max_abs_diff']} steps")
    return (f"TensorFlow Lite Micro: mAP50 {interval(micro)} on {micro['images']} val images, tensor arena "
            f"{micro['arena_bytes']:,} bytes, {same}")


def terminal_table(root: Path) -> str:
    rows = artifact_rows(root)
    lines = [f"{'artifact':<34} {'bytes':>10} {'mAP50 [95% interval]':>24} {'ms (1 thread)':>13}"]
    for r in rows:
        lines.append(f"{r['label']:<34} {r['size_bytes']:>10,} {interval(r):>24} {r['latency_ms_median']:>13.1f}")
    evaluated = read_metrics(root, "evaluate")
    if "tflm" in evaluated:
        lines.append(micro_line(evaluated["tflm"]))
    final = evaluated["final"]
    if "int8_drop_map50_ci_low" in final:
        lines.append(f"INT8 drop of mAP50 (fine-tuned FP32 -> TFLite INT8): {final['int8_drop_map50']:+.3f} "
                     f"[{final['int8_drop_map50_ci_low']:+.3f}, {final['int8_drop_map50_ci_high']:+.3f}]")
    gate_path = root / "artifacts" / "gate" / "gate.json"
    if gate_path.is_file():
        verdict = json.loads(gate_path.read_text())
        lines.append(f"gate {'PASSED' if verdict['passed'] else 'FAILED'}:")
        for name, c in verdict["checks"].items():
            lines.append(f"  {'ok  ' if c['passed'] else 'FAIL'} {describe(name, {'key': name, **c})}")
    else:
        lines.append("gate: not run")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=".", help="project folder holding artifacts/")
    args = parser.parse_args(argv)
    try:
        print(terminal_table(Path(args.root)))
    except FileNotFoundError as exc:
        print(f"results: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
