"""The README's results table, read from the metrics files of the last `dvc repro` (artifacts/*/metrics.json).

    python -m bench.results_table [--root .]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

LABELS = {"distill": "student, distilled (torch FP32)", "prune": "pruned (torch FP32)",
          "finetune": "pruned + fine-tuned (torch FP32)", "onnx_fp32": "ONNX FP32 (onnxruntime)",
          "onnx_fp16": "ONNX FP16 (onnxruntime)", "onnx_int8": "ONNX INT8 QDQ, NNCF (onnxruntime)",
          "tflite_int8": "**TFLite full INT8 (LiteRT)**"}


def load(root: Path, name: str) -> dict:
    path = root / "artifacts" / name / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dvc repro` first")
    return json.loads(path.read_text())


def markdown(root: Path) -> str:
    ev = load(root, "evaluate")
    teacher = load(root, "teacher")
    lines = ["| artifact | params | file bytes | mAP50 | mAP50-95 | 1-thread CPU latency (ms) |",
             "|---|---:|---:|---:|---:|---:|",
             f"| teacher `leafyolo_s` (torch FP32) | {teacher['params']:,} | | {teacher['val/map50']:.3f} | "
             f"{teacher['val/map']:.3f} | |"]
    for name, label in LABELS.items():
        a = ev["artifacts"][name]
        lines.append(f"| {label} | {a['params']:,} | {a['size_bytes']:,} | {a['map50']:.3f} | {a['map']:.3f} | "
                     f"{a['latency_ms_median']:.1f} |")
    final = ev["final"]
    lines.append("")
    lines.append(f"INT8 drop (mAP50, fine-tuned FP32 -> TFLite INT8): {final['int8_drop_map50']:+.3f}. "
                 f"Prune: {load(root, 'prune')['achieved_sparsity']:.3f} of the parameters removed.")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default=".", help="project folder holding artifacts/")
    args = parser.parse_args()
    print(markdown(Path(args.root)))
