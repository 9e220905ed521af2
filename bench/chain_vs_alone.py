"""Is the default chain at least as good as not distilling, at equal CPU time? (issue 25 item 4) Per seed, the whole
pipeline runs twice as DVC experiments in one scratch copy of the project: the chain as params.yaml gives it
(teacher -> distill -> prune -> finetune -> exports), and the student-alone recipe (`--alone`: no teacher,
`teacher.variant: none`, distill.alpha 0, and the distill budget that the teacher's time buys). Both runs' times count
every stage, the teacher's included (the alone run's teacher stage trains nothing and takes a few seconds).

`dvc exp run` starts from the workspace the previous experiment left, so both arms set every key the alone recipe
changes (the chain its params.yaml value), and each experiment's params are checked after it ran. With `--work` a
cut-short comparison resumes: experiments already made with the right params are kept, others are made again.

Reported per seed and as a mean with a 95 % t interval: final INT8 mAP50 (the TFLite file on val, as the gate reads
it) of chain minus alone, and each run's training seconds (teacher, distill, prune, finetune) and pipeline seconds
(every stage). The comparison is at equal time when the alone run's training seconds are within `--tolerance` of the
chain's; the report says when they are not.

    python -m bench.chain_vs_alone [--params params.yaml] [--set "key=value ..."]
        [--alone "teacher.variant=none distill.alpha=0 distill.train.epochs=64 ..."] [--seeds 0 1 2] [--tolerance 0.1]
        [--work DIR] [--out bench/results/chain_vs_alone.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.dvc_project import exp_show, load_params, make_project, run
from bench.seed_spread import SEED_KEYS
from bench.stamp import stamp, write_report
from studies.recipe_spread import apply_overrides, parse_recipe
from studies.teacher_lead import lead, verdict

ARMS = ("chain", "alone")
TRAIN_STAGES = ("teacher", "distill", "prune", "finetune")
PIPELINE_STAGES = (*TRAIN_STAGES, "calibrate", "onnx", "tflite", "web", "evaluate")
EVALUATE = "artifacts/evaluate/metrics.json"
# 64 student epochs alone take about the time of the default chain's teacher (12 epochs) and distillation (24 epochs
# with the teacher's forward pass): per epoch, teacher 2.0x and distilled student 1.6x the student alone (kd_gain).
DEFAULT_ALONE = ("teacher.variant=none distill.alpha=0 distill.train.epochs=64 distill.train.min_steps=0 "
                 "distill.train.lr0=0.003")


def check_alone(base: dict[str, Any], alone: dict[str, Any]) -> None:
    """The alone recipe must train the student without a teacher (teacher.variant none, distill.alpha 0), and may
    change only the distill section besides (the data, pruning, fine-tuning and exports stay the chain's)."""
    bad = [k for k in alone if k.split(".")[0] != "distill" and k != "teacher.variant"]
    if bad:
        raise ValueError(f"--alone: {', '.join(bad)} would change more than the distill stage (use --set for both "
                         "runs)")
    if base["teacher"]["variant"] == "none" or not base["distill"]["alpha"] > 0:
        raise ValueError("the chain arm is the params' recipe, and it trains no teacher or does not distill "
                         f"(teacher.variant {base['teacher']['variant']}, distill.alpha {base['distill']['alpha']}): "
                         "--set the chain's teacher and distillation, e.g. 'teacher.variant=leafyolo_s distill.alpha=0.7 "
                         "distill.train.epochs=24 distill.train.min_steps=744 distill.train.lr0=0.01'")
    recipe = apply_overrides(base, alone)
    if recipe["distill"]["alpha"] != 0 or recipe["teacher"]["variant"] != "none":
        raise ValueError("--alone must set teacher.variant=none and distill.alpha=0: the student-alone recipe trains "
                         "no teacher and learns from none")
    if any(k.startswith(("distill.train.seed",)) for k in alone):
        raise ValueError("--alone may not set the seed: --seeds sets every training seed of both runs")


def lookup(params: dict[str, Any], key: str) -> Any:
    node = params
    for part in key.split("."):
        node = node[part]
    return node


def arm_overrides(base: dict[str, Any], alone: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each arm's `-S` overrides: the same keys for both, the chain with their values in `base`, so that neither arm
    inherits the other's recipe from the workspace."""
    return {"chain": {k: lookup(base, k) for k in alone}, "alone": dict(alone)}


def mismatch(row: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """The keys of `want` whose value differs in experiment `row`'s params, as 'key: got X, expected Y'."""
    return [f"{k}: got {row['params'].get(k)!r}, expected {v!r}" for k, v in want.items() if row["params"].get(k) != v]


def run_experiments(project: Path, base: dict[str, Any], alone: dict[str, Any], seeds: list[int],
                    on_result: Any = None) -> dict[str, dict[int, dict[str, Any]]]:
    """Run (or keep, when already made with the right params) `<arm>-s<seed>` for every seed, chain then alone."""
    sets = arm_overrides(base, alone)
    t0 = time.perf_counter()
    runs = collect(exp_show(project), seeds)
    for seed in seeds:  # seed by seed: a run cut short still has paired rows in its report
        for arm in ARMS:
            name, want = f"{arm}-s{seed}", {**{k: seed for k in SEED_KEYS}, **sets[arm]}
            rows = {r["name"]: r for r in exp_show(project)}
            if name in rows and EVALUATE in rows[name]["metrics"] and not mismatch(rows[name], want):
                print(f"[chain_vs_alone] seed {seed}: {arm} already made, kept", flush=True)
                continue
            if name in rows:
                run(["dvc", "exp", "remove", name], project)
            print(f"[chain_vs_alone] seed {seed}: {arm} ({time.perf_counter() - t0:.0f} s so far)", flush=True)
            run(["dvc", "exp", "run", "-n", name, *(a for k, v in want.items() for a in ("-S", f"{k}={v}"))], project,
                timeout=6 * 3600)
            made = [r for r in exp_show(project) if r["name"] == name]
            wrong = mismatch(made[0], want) if made else ["no such experiment after `dvc exp run`"]
            if wrong:
                raise RuntimeError(f"experiment {name} did not run the {arm} recipe: {'; '.join(wrong)}")
            runs = collect(exp_show(project), seeds)
            if on_result:
                on_result(runs)
    return runs


def seconds_of(metrics: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Training and pipeline seconds of one experiment from its stages' metrics files."""
    def stage(name: str) -> float:
        return float(metrics.get(f"artifacts/{name}/metrics.json", {}).get("seconds", 0.0))

    return {"train": sum(stage(s) for s in TRAIN_STAGES), "pipeline": sum(stage(s) for s in PIPELINE_STAGES),
            **{s: stage(s) for s in TRAIN_STAGES}}


def collect(rows: list[dict[str, Any]], seeds: list[int]) -> dict[str, dict[int, dict[str, Any]]]:
    """{arm: {seed: {map50, seconds, distill_epochs}}} from `dvc exp show` rows named `<arm>-s<seed>`."""
    out: dict[str, dict[int, dict[str, Any]]] = {arm: {} for arm in ARMS}
    for row in rows:
        arm, _, seed = row["name"].rpartition("-s")
        if arm in ARMS and seed.isdigit() and int(seed) in seeds and EVALUATE in row["metrics"]:
            final = row["metrics"][EVALUATE]["artifacts"]["tflite_int8"]
            out[arm][int(seed)] = {"map50": final["map50"], "seconds": seconds_of(row["metrics"]),
                                   "distill_epochs": row["metrics"].get("artifacts/distill/metrics.json", {})
                                   .get("train_epochs")}
    return out


def equal_time(runs: dict[str, dict[int, dict[str, Any]]], tolerance: float) -> dict[str, Any]:
    chain = statistics.fmean(r["seconds"]["train"] for r in runs["chain"].values())
    alone = statistics.fmean(r["seconds"]["train"] for r in runs["alone"].values())
    ratio = alone / chain if chain else float("nan")
    return {"chain_train_s": chain, "alone_train_s": alone, "ratio": ratio, "equal": abs(ratio - 1) <= tolerance}


def report(args: argparse.Namespace, common: dict[str, Any], alone: dict[str, Any],
           runs: dict[str, dict[int, dict[str, Any]]], header: str) -> None:
    wall = sum(r["seconds"]["pipeline"] for arm in ARMS for r in runs[arm].values())
    both = sorted(set(runs["chain"]) & set(runs["alone"]))
    diff = lead({s: runs["chain"][s]["map50"] for s in both}, {s: runs["alone"][s]["map50"] for s in both})
    timing = equal_time({a: {s: runs[a][s] for s in both} for a in ARMS}, args.tolerance) if both else None
    setting = " ".join(f"{k}={v}" for k, v in common.items())
    lines = ["# The default chain against the student alone at equal CPU time (issue 25 item 4)", "", header, "",
             f"Params `{args.params}`" + (f" with {setting}" if setting else "") + f"; seeds {args.seeds} (every "
             "training seed and the calibration seed); each run a `dvc exp run` of the whole pipeline in one scratch "
             f"project, one at a time, {wall / 60:.0f} min of stages in all. Alone: "
             f"{' '.join(f'{k}={v}' for k, v in alone.items())}. Final INT8 mAP50: the TFLite file on "
             "val; chain minus alone is paired by seed, mean and 95 % t interval over seeds.", "",
             "| run | distill epochs | final INT8 mAP50 per seed | mean | training s (teacher + distill + prune + "
             "finetune) | pipeline s |", "|---|---:|---|---:|---|---:|"]
    for arm in ARMS:
        done = runs[arm]
        if not done:
            continue
        per = ", ".join(f"{r['map50']:.3f}" for _, r in sorted(done.items()))
        sec = {k: statistics.fmean(r["seconds"][k] for r in done.values()) for k in ("train", "pipeline",
                                                                                    *TRAIN_STAGES)}
        parts = " + ".join(f"{sec[s]:.0f}" for s in TRAIN_STAGES)
        epochs = next(iter(done.values()))["distill_epochs"]
        lines.append(f"| {arm} | {epochs} | {per} | {statistics.fmean(r['map50'] for r in done.values()):.3f} | "
                     f"{sec['train']:.0f} ({parts}) | {sec['pipeline']:.0f} |")
    if diff is not None and timing is not None:
        call = verdict(diff, 0.0, ahead="chain ahead", behind="alone ahead", by="")
        lines += ["", f"Chain minus alone: **{diff['mean']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}]** "
                      f"({', '.join(f'{d:+.3f}' for d in diff['diffs'])} on seeds {diff['seeds']}): {call}.",
                  "", f"Time: the alone run trained {timing['ratio']:.2f}x the chain's seconds "
                      f"({timing['alone_train_s']:.0f} against {timing['chain_train_s']:.0f}): "
                  + ("equal time within the tolerance" if timing["equal"] else
                     f"**not** equal time (tolerance {args.tolerance:g}); change --alone's epochs") + "."]
    write_report(args.out, lines, {"runs": runs, "set": common, "alone": alone, "seeds": args.seeds,
                                   "difference": diff, "timing": timing, "tolerance": args.tolerance})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--set", default="", help="'key=value ...' overrides for both runs")
    parser.add_argument("--alone", default=DEFAULT_ALONE, help="'distill.key=value ...': the student-alone recipe")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tolerance", type=float, default=0.1, help="largest relative training-time difference")
    parser.add_argument("--work", default=None, help="keep the scratch project here (default: a temp folder)")
    parser.add_argument("--out", default="bench/results/chain_vs_alone.md")
    args = parser.parse_args()
    if not args.seeds or len(set(args.seeds)) != len(args.seeds) or not 0 < args.tolerance < 1:
        parser.error("--seeds must be distinct values, at least one; --tolerance in (0, 1)")
    try:
        base = load_params(args.params)
        common = parse_recipe(f"set: {args.set}")[1]
        alone = parse_recipe(f"alone: {args.alone}")[1]
        shared = apply_overrides(base, common)
        check_alone(shared, alone)
        apply_overrides(shared, {k: args.seeds[0] for k in SEED_KEYS})  # every seed key exists
    except (OSError, KeyError, ValueError) as exc:
        parser.error(str(exc).strip("'\""))
    header = stamp()
    shared["gate"].update(max_bytes=10**12, min_map50=0.0, max_int8_drop=1.0, min_int8_retention=0.0)
    with tempfile.TemporaryDirectory(prefix="chain_vs_alone_") as tmp:
        project = Path(args.work or tmp) / "project"
        if (project / ".dvc").is_dir():
            made = yaml.safe_load(run(["git", "show", "HEAD:params.yaml"], project).stdout)
            if made != shared:
                sys.exit(f"{project} was made with other params than these; remove it or choose another --work")
            print(f"[chain_vs_alone] resuming in {project}", flush=True)
        else:
            make_project(project, shared)
        runs = run_experiments(project, shared, alone, args.seeds,
                               on_result=lambda r: report(args, common, alone, r, header))
    report(args, common, alone, runs, header)

if __name__ == "__main__":
    main()
