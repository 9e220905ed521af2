"""Training images per second: our variants beside Ultralytics YOLOv8n on this machine, the same data, image size,
batch and torch threads, no mosaic (issue 25 item 1). Each side times its epochs' batch loops only (data loading,
forward, loss, backward, optimizer step, EMA); setup and validation are left out. The runs alternate (ours, theirs,
ours, ...) `--repeats` times, so a machine that slows down part-way shows in the spread instead of in one side.

    python -m bench.train_throughput [--params params.yaml] [--data DATA_YAML] [--imgsz 128] [--batch 32]
        [--epochs 2] [--threads 2] [--repeats 2] [--variants leafyolo_u leafyolo_s] [--out bench/results/...md]

Without `--data` the params' data section is built (the default: the generated dataset). YOLOv8n runs in the bench
environment (`scripts/bench_env.sh`), as in bench.deploy_compare.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.accuracy_compare import ultralytics_yaml
from bench.stamp import stamp, write_report
from bench.ultralytics_env import bench_python, run_side

THEIRS = "yolov8n"


def ours(variant: str, data_yaml: Path, params: dict[str, Any], args: argparse.Namespace, work: Path) -> dict:
    """Train `variant` for `args.epochs` epochs with the distill section's recipe at the bench's size and batch."""
    import torch

    from pipeline.common.seeding import seed_everything
    from pipeline.config.params import section_from
    from pipeline.config.stages import DistillParams
    from pipeline.data.data_yaml import load_data_yaml
    from pipeline.model.leafyolo import LeafYOLO
    from pipeline.train.run import train_model

    torch.set_num_threads(args.threads)
    sp = section_from(params, "params.yaml", "distill", DistillParams)
    p = dataclasses.replace(sp.train, epochs=args.epochs, min_steps=0, batch_size=args.batch, imgsz=args.imgsz,
                            seed=0, workers=0)
    seed_everything(0)
    model = LeafYOLO(variant, load_data_yaml(data_yaml).nc, act=sp.act, seed=0)
    t0 = time.perf_counter()
    result = train_model(model, data_yaml, p, work / "model.pt", work / "resume")
    return {"images_per_second": result.images_per_second, "wall_seconds": time.perf_counter() - t0,
            "params": sum(q.numel() for q in model.parameters()), "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="", help="a YOLO data.yaml (default: the params' data section)")
    parser.add_argument("--imgsz", type=int, default=0, help="default: the distill section's")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=["leafyolo_u", "leafyolo_s"])
    parser.add_argument("--out", default="bench/results/train_throughput.md")
    args = parser.parse_args()
    for key in ("batch", "epochs", "threads", "repeats"):
        if getattr(args, key) < 1:
            parser.error(f"--{key} must be >= 1, got {getattr(args, key)}")
    from pipeline.model.variants import VARIANTS

    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: {unknown} unknown; one of {sorted(VARIANTS)}")
    if args.data and not Path(args.data).is_file():
        parser.error(f"--data {args.data}: no such file")
    params = yaml.safe_load(Path(args.params).read_text())
    args.imgsz = args.imgsz or params["distill"]["train"]["imgsz"]
    bench_python()  # fails here, naming the fix, when the bench environment is missing
    header = stamp()
    runs: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="throughput_") as tmp:
        if args.data:
            data_yaml = Path(args.data).resolve()
        else:
            from studies.recipe_spread import dataset_for

            data_yaml = dataset_for(params, Path(tmp) / "data")
        their_yaml = ultralytics_yaml(data_yaml.parent, Path(tmp) / "ultralytics_data.yaml")
        for r in range(args.repeats):
            for name in [*args.variants, THEIRS]:
                work = Path(tmp) / f"{name}-{r}"
                print(f"[throughput] repeat {r + 1}/{args.repeats}: {name}", flush=True)
                if name == THEIRS:
                    result = run_side(["throughput", "--cfg", "yolov8n.yaml", "--data", str(their_yaml), "--imgsz",
                                       str(args.imgsz), "--epochs", str(args.epochs), "--batch", str(args.batch),
                                       "--threads", str(args.threads), "--workdir", str(work / "u")], work)
                else:
                    result = ours(name, data_yaml, params, args, work)
                print(f"  {result['images_per_second']:.1f} images/s", flush=True)
                runs.setdefault(name, []).append(result)
    theirs = statistics.median(r["images_per_second"] for r in runs[THEIRS])
    lines = ["# Training throughput: ours beside YOLOv8n", "", header, "",
             f"Data `{args.data or params['data']['source']}`, {args.imgsz} px, batch {args.batch}, {args.epochs} "
             f"epochs a run, {args.threads} torch threads, no mosaic; the runs alternate, {args.repeats} of each. "
             "Images/s of the epochs' batch loops (data loading, forward, loss, backward, step, EMA), setup and "
             "validation excluded. Ratio: median images/s over YOLOv8n's median.", "",
             "| model | params | images/s (median) | per run | ratio to YOLOv8n |", "|---|---:|---:|---|---:|"]
    for name, rs in runs.items():
        ips = statistics.median(r["images_per_second"] for r in rs)
        each = ", ".join(f"{r['images_per_second']:.1f}" for r in rs)
        label = "Ultralytics `yolov8n`" if name == THEIRS else f"`{name}`"
        lines.append(f"| {label} | {rs[0]['params']:,} | {ips:.1f} | {each} | {ips / theirs:.2f} |")
    write_report(args.out, lines, {"runs": runs, "imgsz": args.imgsz, "batch": args.batch, "epochs": args.epochs,
                                   "threads": args.threads, "data": args.data or params["data"]["source"]})


if __name__ == "__main__":
    main()
