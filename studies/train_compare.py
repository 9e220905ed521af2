"""From-scratch teacher, from-scratch student and distilled student on one dataset, at the default CPU budget
(the `teacher` / `distill` train settings of params.yaml), with training throughput.

    python -m studies.train_compare --data ../shared/datasets/bccd/data.yaml [--epochs N]
        [--out studies/results/train_compare_bccd.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import torch

from bench.stamp import stamp, write_report
from pipeline.config.params import load_section
from pipeline.config.stages import DistillParams, TeacherParams
from pipeline.data.data_yaml import load_data_yaml
from pipeline.model.leafyolo import LeafYOLO
from pipeline.train.distill import DistillWeights
from pipeline.train.run import train_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a YOLO data.yaml")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--epochs", type=int, default=None, help="override the epochs of all three runs")
    parser.add_argument("--out", default="studies/results/train_compare.md")
    args = parser.parse_args()
    tp = load_section(args.params, "teacher", TeacherParams)
    dp = load_section(args.params, "distill", DistillParams)
    t_train, d_train = tp.train, dp.train
    if args.epochs:
        t_train = dataclasses.replace(t_train, epochs=args.epochs)
        d_train = dataclasses.replace(d_train, epochs=args.epochs)
    nc = load_data_yaml(args.data).nc
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        runs = [("teacher from scratch", tp.variant, t_train, None),
                ("student from scratch (alpha=0)", dp.variant, d_train, None),
                (f"student distilled (alpha={dp.alpha})", dp.variant, d_train, "teacher")]
        teacher = None
        for i, (label, variant, p, use_teacher) in enumerate(runs, 1):
            print(f"[compare {i}/3] {label}: {variant}, {p.epochs} epochs at {p.imgsz}", flush=True)
            torch.manual_seed(p.seed)
            model = LeafYOLO(variant, nc, act=dp.act)
            result = train_model(model, args.data, p, work / f"{i}.pt", work / f"{i}-resume",
                                 teacher=teacher if use_teacher else None,
                                 distill=DistillWeights(dp.alpha, dp.temperature, dp.cls_weight, dp.feat_weight))
            if i == 1:
                teacher = result.model
            rows.append({"run": label, "variant": variant, "epochs": p.epochs, "imgsz": p.imgsz,
                         "map50": result.metrics["val/map50"], "map": result.metrics["val/map"],
                         "images_per_second": result.images_per_second})
            print(f"  {rows[-1]}", flush=True)
    gain = rows[2]["map50"] - rows[1]["map50"]
    lines = [f"# Training comparison on `{args.data}`", "", stamp(), "",
             "| run | model | epochs @ px | val mAP50 | val mAP50-95 | train images/s (CPU) |",
             "|---|---|---|---:|---:|---:|"]
    lines += [f"| {r['run']} | `{r['variant']}` | {r['epochs']} @ {r['imgsz']} | {r['map50']:.3f} | {r['map']:.3f} | "
              f"{r['images_per_second']:.1f} |" for r in rows]
    lines += ["", f"Distillation gain (mAP50, distilled - from scratch): {gain:+.3f}"]
    write_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
