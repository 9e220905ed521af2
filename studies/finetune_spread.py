"""Where the seed spread is made: the `finetune` stage alone, once per seed, from ONE pruned checkpoint (by default
the committed run's `artifacts/prune/model.pt`) with the params.yaml finetune recipe. Its spread is what fine-tuning
adds; the rest of the whole chain's spread (`bench.seed_spread`, `studies.recipe_spread`) comes from upstream (teacher,
distillation, pruning). The run at the checkpoint's own finetune seed repeats the stage's result bit for bit (same
thread count), which the report checks against `--stage-metrics`.

    python -m studies.finetune_spread [--model artifacts/prune/model.pt] [--data artifacts/data/dataset/data.yaml]
        [--params params.yaml] [--seeds 0 1 2 3] [--stage-metrics artifacts/finetune/metrics.json]
        [--out studies/results/finetune_spread.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.stamp import stamp, write_report


def finetune_once(model_path: Path, data_yaml: Path, params: Path, seed: int, work: Path) -> dict:
    """The finetune stage's work at `seed`, in this process (checkpoint loaded, then seeded and trained)."""
    from bench.chain import finetune_pruned
    from pipeline.config.params import load_section
    from pipeline.config.stages import FinetuneParams
    from pipeline.io.model_loader import load_model

    p = load_section(params, "finetune", FinetuneParams)
    if p.alpha > 0:
        raise ValueError(f"finetune.alpha={p.alpha} in {params}: this bench fine-tunes without the teacher (alpha 0)")
    p = dataclasses.replace(p, train=dataclasses.replace(p.train, seed=seed))
    model, ckpt = load_model(model_path)
    t0 = time.perf_counter()
    r = finetune_pruned(model, ckpt.get("pruning_history"), p, data_yaml, work / f"seed{seed}.pt",
                        work / f"resume{seed}")
    return {"seed": seed, "map50": r.metrics["val/map50"], "map": r.metrics["val/map"],
            "train_loss": r.metrics["train/loss"], "seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    from pipeline.common.kernels import pin_portable_kernels

    pin_portable_kernels()  # as every stage pins them (stages/__init__.py), before torch loads: seed 0 = the stage
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="artifacts/prune/model.pt")
    parser.add_argument("--data", default="artifacts/data/dataset/data.yaml")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--stage-metrics", default="artifacts/finetune/metrics.json",
                        help="the finetune stage's metrics of the same checkpoint ('' to skip the check)")
    parser.add_argument("--out", default="studies/results/finetune_spread.md")
    args = parser.parse_args()
    for path in (args.model, args.data, args.params):
        if not Path(path).is_file():
            parser.error(f"{path} is not a file (run `dvc repro` first for the default artifacts)")
    if len(args.seeds) < 2:
        parser.error("--seeds needs at least two seeds: a spread is measured")
    from pipeline.config.params import load_section
    from pipeline.config.stages import FinetuneParams

    own_seed = load_section(args.params, "finetune", FinetuneParams).train.seed  # bad params fail here, before work
    header = stamp()
    with tempfile.TemporaryDirectory(prefix="finetune_spread_") as tmp:
        runs = []
        for k, seed in enumerate(args.seeds, 1):
            print(f"[finetune {k}/{len(args.seeds)}] seed {seed}", flush=True)
            runs.append(finetune_once(Path(args.model), Path(args.data), Path(args.params), seed, Path(tmp)))
            print(f"  mAP50 {runs[-1]['map50']:.4f}", flush=True)
    maps = [r["map50"] for r in runs]
    summary = {"mean": statistics.mean(maps), "std": statistics.stdev(maps), "min": min(maps), "max": max(maps)}
    lines = ["# Finetune-only seed spread (one pruned checkpoint, several finetune seeds)", "", header, "",
             f"`{args.model}` fine-tuned with the `finetune` recipe of `{args.params}` once per seed; val mAP50 "
             "(FP32, the trainer's evaluation, the same as `evaluate`'s `finetune` artifact).", "",
             "| seed | mAP50 | mAP50-95 | seconds |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['seed']} | {r['map50']:.4f} | {r['map']:.4f} | {r['seconds']:.0f} |" for r in runs]
    lines += ["", f"Mean {summary['mean']:.4f}, std {summary['std']:.4f}, range {summary['min']:.4f}-"
              f"{summary['max']:.4f} over {len(runs)} seeds."]
    own = next((r for r in runs if r["seed"] == own_seed), None)
    if args.stage_metrics and own is not None:
        metrics = json.loads(Path(args.stage_metrics).read_text())
        stage = (metrics["val/map50"], metrics["train/loss"])  # the loss: a last-bit difference shows even where
        summary["stage_repeated"] = (own["map50"], own["train_loss"]) == stage  # a tiny model's mAP50 is 0
        lines.append(f"The run at the params' own seed ({own_seed}) gives mAP50 {own['map50']!r} and last-epoch "
                     f"train loss {own['train_loss']!r}; the stage's metrics say {stage[0]!r} and {stage[1]!r}: "
                     f"{'identical' if summary['stage_repeated'] else 'DIFFERENT'}.")
    write_report(args.out, lines, {"runs": runs, **summary})


if __name__ == "__main__":
    main()
