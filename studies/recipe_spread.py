"""Seed spread of training recipes, for choosing the defaults: the training chain (teacher -> distill -> prune ->
finetune) of each recipe run once per seed, in parallel processes, with the fine-tuned student's FP32 val mAP50
(mean, standard deviation, range) and the wall time and throughput of each training stage.

A recipe is params.yaml plus overrides: `--recipe "ema: train.ema_tau=100 train.ema_decay=0.99"` (a key under
`train.` applies to the teacher, distill and finetune train sections alike). No export or INT8 evaluation, so it
runs where TensorFlow and DVC are not installed (a GPU machine, say); `bench.seed_spread` measures the full chain.

    python -m studies.recipe_spread [--recipe "NAME: key=value ..."]... [--seeds 0 1 2] [--jobs 3]
        [--out studies/results/recipe_spread.md] [--keep DIR]

`--keep DIR` keeps every run's folder (teacher.pt, distill.pt, finetune.pt, log.txt), for example to fine-tune the
same distilled students with other settings afterwards.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.stamp import stamp, write_report

TRAIN_SECTIONS = ("teacher", "distill", "finetune")
STAGES = ("teacher", "distill", "finetune")


def parse_recipe(text: str) -> tuple[str, dict[str, Any]]:
    """'name: a.b=1 c=x' -> ('name', {'a.b': 1, 'c': 'x'}); values are read as YAML scalars."""
    name, sep, rest = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"--recipe {text!r}: expected 'NAME: key=value ...'")
    overrides = {}
    for item in rest.split():
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"--recipe {text!r}: {item!r} is not key=value")
        overrides[key] = yaml.safe_load(value)
    return name.strip(), overrides


def apply_overrides(params: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(params)
    for key, value in overrides.items():
        keys = [f"{s}.{key}" for s in TRAIN_SECTIONS] if key.startswith("train.") else [key]
        for full in keys:
            node = out
            *parents, leaf = full.split(".")
            for part in parents:
                if part not in node:
                    raise KeyError(f"{full} is not a params.yaml key")
                node = node[part]
            if leaf not in node:
                raise KeyError(f"{full} is not a params.yaml key")
            node[leaf] = value
    return out


def with_seed(params: dict[str, Any], seed: int) -> dict[str, Any]:
    out = copy.deepcopy(params)
    for section in TRAIN_SECTIONS:
        out[section]["train"]["seed"] = seed
    return out


UPSTREAM_SECTIONS = ("data", "teacher", "distill")  # what a kept run's teacher and distilled student depend on
UPSTREAM_FILES = ("params.yaml", "teacher.pt", "distill.pt", "result.json")


def find_upstream(kept: Path, params: dict[str, Any], threads: int) -> Path | None:
    """A finished run folder under `kept` (a `--keep` folder) whose data, teacher and distill settings, seeds
    included, equal `params`' and whose torch thread count is `threads` (another count gives other bits): its
    teacher and distilled student are what this run would train."""
    for folder in sorted(p.parent for p in kept.glob("*/result.json")):
        if all((folder / f).is_file() for f in UPSTREAM_FILES):
            other = yaml.safe_load((folder / "params.yaml").read_text())
            same_threads = json.loads((folder / "result.json").read_text()).get("threads") == threads
            if same_threads and all(other.get(s) == params.get(s) for s in UPSTREAM_SECTIONS):
                return folder
    return None


def run_chain(params_path: Path, data_yaml: Path, work: Path, upstream: Path | None = None) -> dict[str, Any]:
    """The training stages' work, in this process: {stage: {map50, seconds, images_per_second}}. With `upstream`
    (a kept run of the same data, teacher and distill settings) only prune and finetune run; the teacher's and
    the distilled student's figures are that run's."""
    import torch

    from bench.chain import prune_and_finetune, train_student, train_teacher
    from pipeline.config.params import load_section
    from pipeline.config.stages import DistillParams, FinetuneParams, PruneParams, TeacherParams
    from pipeline.io.model_loader import load_model

    def record(result, seconds: float) -> dict[str, Any]:
        return {"map50": result.metrics["val/map50"], "seconds": round(seconds, 1),
                "images_per_second": result.images_per_second, "device": result.device}

    if upstream is not None:
        kept = json.loads((upstream / "result.json").read_text())
        _, finetune, seconds = prune_and_finetune(upstream / "distill.pt", load_model(upstream / "teacher.pt")[0],
                                                  load_section(params_path, "prune", PruneParams),
                                                  load_section(params_path, "finetune", FinetuneParams), data_yaml,
                                                  work)
        return {"teacher": kept["teacher"], "distill": kept["distill"], "finetune": record(finetune, seconds),
                "upstream": str(upstream), "threads": torch.get_num_threads()}
    t0 = time.perf_counter()
    teacher = train_teacher(load_section(params_path, "teacher", TeacherParams), data_yaml, work / "teacher.pt", work)
    out = {"teacher": record(teacher, time.perf_counter() - t0)}
    runs = train_student(teacher.model, load_section(params_path, "distill", DistillParams),
                         load_section(params_path, "prune", PruneParams),
                         load_section(params_path, "finetune", FinetuneParams), data_yaml, work)
    out["distill"] = record(runs.distill, runs.seconds["distill"])
    out["finetune"] = record(runs.finetune, runs.seconds["finetune"])
    out["threads"] = torch.get_num_threads()
    return out


def dataset_for(params: dict[str, Any], cache: Path) -> Path:
    """The recipe's dataset, generated once per distinct `data` section."""
    from pipeline.config.params import section_from
    from pipeline.config.stages import DataParams
    from pipeline.data.prepare import prepare_dataset

    key = hashlib.sha256(json.dumps(params["data"], sort_keys=True).encode()).hexdigest()[:12]
    folder = cache / key
    if not (folder / "data.yaml").exists():
        prepare_dataset(section_from(params, "params.yaml", "data", DataParams), folder)
    return folder / "data.yaml"


def summarise(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    final = [r["finetune"]["map50"] for r in runs]
    row: dict[str, Any] = {"recipe": name, "seeds": len(runs), "mean": statistics.mean(final),
                           "std": statistics.stdev(final) if len(final) > 1 else 0.0,
                           "min": min(final), "max": max(final), "runs": runs}
    for stage in STAGES:
        row[f"{stage}_map50"] = statistics.mean(r[stage]["map50"] for r in runs)
        row[f"{stage}_s"] = statistics.mean(r[stage]["seconds"] for r in runs)
        row[f"{stage}_ips"] = statistics.mean(r[stage]["images_per_second"] for r in runs)
    return row


def report(args: argparse.Namespace, recipes: list, results: dict[str, dict[Path, dict[str, Any] | None]],
           header: str) -> None:
    """Write the table of the runs finished so far (rewritten after each run, so a run cut short keeps its rows)."""
    rows = [summarise(name, done) for name, _, _ in recipes
            if (done := [run for run in results[name].values() if run is not None])]
    overrides = {name: o for name, _, o in recipes}
    lines = ["# Recipe seed spread (training chain only, FP32 mAP50 of the fine-tuned student)", "", header, "",
             f"Seeds {args.seeds}; {args.jobs} chains at once (times are under that sharing).", "",
             "| recipe | overrides | teacher mAP50 | distill mAP50 | finetune mAP50 mean | std | range | "
             "teacher s (img/s) | distill s (img/s) | finetune s (img/s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        o = " ".join(f"{k}={v}" for k, v in overrides[r["recipe"]].items()) or "(params.yaml)"
        lines.append(f"| {r['recipe']} | {o} | {r['teacher_map50']:.3f} | {r['distill_map50']:.3f} | {r['mean']:.4f} "
                     f"| {r['std']:.4f} | {r['min']:.3f}-{r['max']:.3f} | "
                     + " | ".join(f"{r[f'{s}_s']:.0f} ({r[f'{s}_ips']:.0f})" for s in STAGES) + " |")
    lines += ["", "Per seed (mAP50 of teacher / distilled / fine-tuned; the seed sets every training seed):", "",
              "| recipe | seed | teacher | distill | finetune | teacher and distill from |", "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines += [f"| {r['recipe']} | {run['seed']} | {run['teacher']['map50']:.4f} | {run['distill']['map50']:.4f} | "
                  f"{run['finetune']['map50']:.4f} | {run.get('upstream', 'this run')} |" for run in r["runs"]]
    lines.append(f"\nDevice: {rows[0]['runs'][0]['teacher']['device']}.")
    write_report(args.out, lines, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--recipe", action="append", default=[], help="'NAME: key=value ...' (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="chains run at once")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per chain (0: torch's choice)")
    parser.add_argument("--out", default="studies/results/recipe_spread.md")
    parser.add_argument("--keep", default=None,
                        help="keep each run's folder (checkpoints, log) under this folder instead of a temp one")
    parser.add_argument("--reuse", default=None,
                        help="a --keep folder of earlier runs: a run whose data, teacher and distill settings, "
                             "seed and torch thread count match one there takes its teacher and distilled student "
                             "and only prunes and fine-tunes (for comparing prune / finetune settings)")
    parser.add_argument("--one", nargs=4, metavar=("PARAMS", "DATA", "WORK", "RESULT"), help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        if args.threads:
            import torch
            torch.set_num_threads(args.threads)
        params_path, data_yaml, work, result = map(Path, args.one)
        upstream = Path(args.upstream) if args.upstream else None
        result.write_text(json.dumps(run_chain(params_path, data_yaml, work, upstream)))
        return
    if args.reuse and not Path(args.reuse).is_dir():
        parser.error(f"--reuse {args.reuse}: no such folder (a --keep folder of earlier runs)")
    base = yaml.safe_load(Path(args.params).read_text())
    recipes = [parse_recipe(r) for r in args.recipe] or [("defaults", {})]
    recipes = [(name, apply_overrides(base, overrides), overrides) for name, overrides in recipes]  # bad keys: now
    if args.keep and Path(args.keep).exists() and any(Path(args.keep).iterdir()):
        raise SystemExit(f"--keep {args.keep}: the folder is not empty (runs are kept in a new or empty folder)")
    threads = args.threads
    if args.reuse and not threads:
        import torch
        threads = torch.get_num_threads()  # what each chain process gets by default
    header = stamp()
    with tempfile.TemporaryDirectory(prefix="recipe_spread_") as scratch:
        tmp = Path(args.keep) if args.keep else Path(scratch)
        jobs = []
        for name, params, _ in recipes:
            data_yaml = dataset_for(params, tmp / "data")
            for k, seed in enumerate(args.seeds):
                work = tmp / f"{name}-{k}-seed{seed}"
                work.mkdir(parents=True)
                seeded = with_seed(params, seed)
                (work / "params.yaml").write_text(yaml.safe_dump(seeded, sort_keys=False))
                upstream = find_upstream(Path(args.reuse), seeded, threads) if args.reuse else None
                jobs.append((name, seed, [sys.executable, "-m", "studies.recipe_spread", "--threads",
                                          str(args.threads), "--one", str(work / "params.yaml"), str(data_yaml),
                                          str(work), str(work / "result.json")]
                             + (["--upstream", str(upstream)] if upstream else []), work))
        t0 = time.perf_counter()
        running: list[tuple[str, int, subprocess.Popen, Path]] = []
        # one slot per run in queued order, filled as runs finish: the rows keep that order whichever finishes first
        results: dict[str, dict[Path, dict[str, Any] | None]] = {name: {} for name, _, _ in recipes}
        for name, _, _, work in jobs:
            results[name][work] = None
        pending = list(jobs)
        while pending or running:
            while pending and len(running) < args.jobs:
                name, seed, cmd, work = pending.pop(0)
                log = open(work / "log.txt", "w")
                running.append((name, seed, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), work))
            time.sleep(2)
            for item in [r for r in running if r[2].poll() is not None]:
                running.remove(item)
                name, seed, proc, work = item
                if proc.returncode:
                    raise SystemExit(f"recipe {name} seed {seed} failed:\n"
                                     + (work / "log.txt").read_text()[-3000:])
                run = json.loads((work / "result.json").read_text())
                results[name][work] = {"seed": seed, "folder": str(work), **run}
                print(f"[{time.perf_counter() - t0:.0f} s] {name} seed {seed}: finetune mAP50 "
                      f"{run['finetune']['map50']:.4f}", flush=True)
                report(args, recipes, results, header)
    report(args, recipes, results, header)


if __name__ == "__main__":
    main()
