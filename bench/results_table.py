"""The README's results table, read from the metrics files of the last `dvc repro` (artifacts/*/metrics.json).

    python -m bench.results_table [--root .]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.evaluate.results import artifact_rows, interval, micro_line, read_metrics


def markdown(root: Path) -> str:
    teacher = read_metrics(root, "teacher")
    lines = ["| artifact | params | file bytes | mAP50 [95% interval] | mAP50-95 [95% interval] | "
             "1-thread CPU latency (ms) |",
             "|---|---:|---:|---:|---:|---:|"]
    if teacher.get("trained", True):
        lines.append(f"| teacher (torch FP32) | {teacher['params']:,} | | {teacher['val/map50']:.3f} | "
                     f"{teacher['val/map']:.3f} | |")
    else:
        lines.append("| teacher: none (`teacher.variant: none`, the student trained alone) | | | | | |")
    for r in artifact_rows(root):
        label = f"**{r['label']}**" if r["name"] == "tflite_int8" else r["label"]
        lines.append(f"| {label} | {r['params']:,} | {r['size_bytes']:,} | {interval(r)} | {interval(r, 'map')} | "
                     f"{r['latency_ms_median']:.1f} |")
    evaluated = read_metrics(root, "evaluate")
    final = evaluated["final"]
    drop = f"{final['int8_drop_map50']:+.3f}"
    if "int8_drop_map50_ci_low" in final:
        drop += f" [{final['int8_drop_map50_ci_low']:+.3f}, {final['int8_drop_map50_ci_high']:+.3f}]"
    lines.append("")
    lines.append(f"INT8 drop (mAP50, fine-tuned FP32 -> TFLite INT8, paired 95% interval): {drop}. "
                 f"Prune: {read_metrics(root, 'prune')['achieved_sparsity']:.3f} of the parameters removed.")
    if "tflm" in evaluated:
        lines.append(micro_line(evaluated["tflm"]) + ".")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default=".", help="project folder holding artifacts/")
    args = parser.parse_args()
    print(markdown(Path(args.root)))
