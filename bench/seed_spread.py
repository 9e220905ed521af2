"""How much a result moves when only the training seeds change: the default chain run once per seed, as DVC
experiments in a scratch copy of the project (same dataset; every training seed and the calibration seed set to
k), with mean, standard deviation and range of every artifact's mAP50 and the mean 95 % bootstrap half-width.

The spread over seeds says how far apart two experiments must be before the difference is more than training
noise; `gate.min_map50` is set from it (mean minus three standard deviations of the final INT8 mAP50).

    python -m bench.seed_spread [--params params.yaml] [--seeds 0 1 2] [--out bench/results/seed_spread.md]

Runs already made need not be made again: `--from-project DIR --names alone-s` reads the experiments `alone-s<seed>` of
a scratch project (bench.chain_vs_alone's student-alone arm is the default recipe run once per seed), after checking
that their params are params.yaml's in every key but the seeds, the gate's budgets and the keys named by `--allow`
(each listed in the report with both values).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.dvc_project import commit, exp_show, flatten, load_params, make_project, run
from bench.stamp import stamp, write_report

SEED_KEYS = ("teacher.train.seed", "distill.train.seed", "finetune.train.seed", "calibrate.seed")
ARTIFACTS = ("distill", "prune", "finetune", "onnx_fp32", "onnx_fp16", "onnx_int8", "tflite_int8")
EVALUATE = "artifacts/evaluate/metrics.json"


def seeds_of(params: dict[str, Any]) -> set[int]:
    values = set()
    for key in SEED_KEYS:
        node = params
        for part in key.split("."):
            node = node[part]
        values.add(int(node))
    return values


def run_seeds(params: dict[str, Any], seeds: list[int], work: Path) -> dict[int, dict[str, Any]]:
    """{seed: evaluate metrics} from a cold `dvc repro` at the params' own seed and one experiment per other seed."""
    base = seeds_of(params)
    if len(base) != 1:
        raise ValueError(f"the params' seeds {SEED_KEYS} differ ({sorted(base)}); expected one value")
    base_seed = base.pop()
    relaxed = copy.deepcopy(params)
    relaxed["gate"].update(max_bytes=10**12, min_map50=0.0, max_int8_drop=1.0, min_int8_retention=0.0)
    project = make_project(work / "project", relaxed)
    t0 = time.perf_counter()
    print(f"[seeds 1/{len(seeds)}] dvc repro (seed {base_seed}) in {project}", flush=True)
    run(["dvc", "repro"], project, timeout=6 * 3600)
    commit(project, f"seed {base_seed}")
    for i, seed in enumerate((s for s in seeds if s != base_seed), 2):
        print(f"[seeds {i}/{len(seeds)}] dvc exp run with seed {seed} ({time.perf_counter() - t0:.0f} s so far)",
              flush=True)
        overrides = [arg for key in SEED_KEYS for arg in ("-S", f"{key}={seed}")]
        run(["dvc", "exp", "run", "-n", f"seed-{seed}", *overrides], project, timeout=6 * 3600)
    by_seed = {}
    for row in exp_show(project):
        seed = int(row["params"]["distill.train.seed"])
        if seed in seeds and EVALUATE in row["metrics"]:
            by_seed[seed] = {"evaluate": row["metrics"][EVALUATE],
                             "teacher": row["metrics"].get("artifacts/teacher/metrics.json", {})}
    missing = set(seeds) - set(by_seed)
    if missing:
        raise RuntimeError(f"seeds missing from `dvc exp show`: {sorted(missing)}")
    return by_seed


def same_recipe(params: dict[str, Any], row: dict[str, Any], allow: set[str]) -> dict[str, tuple[Any, Any]]:
    """The allowed keys where experiment `row` differs from `params` ({key: (row's value, params' value)}); any
    other difference, seeds and the gate's budgets apart, is an error naming the keys."""
    mine = {k: v for k, v in flatten(params).items() if k not in SEED_KEYS and not k.startswith("gate.")}
    theirs = {k: v for k, v in row["params"].items() if k not in SEED_KEYS and not k.startswith("gate.")}
    differ = {k: (theirs.get(k), mine.get(k)) for k in sorted(mine.keys() | theirs.keys()) if theirs.get(k) != mine.get(k)}
    bad = [f"{k} ({a!r} in {row['name']}, {b!r} in the params)" for k, (a, b) in differ.items() if k not in allow]
    if bad:
        raise ValueError(f"experiment {row['name']} is not the params' recipe: {'; '.join(bad)} (--allow KEY for a "
                         "key that does not change the outputs)")
    return differ


def read_seeds(params: dict[str, Any], seeds: list[int], project: Path, names: str,
               allow: set[str]) -> tuple[dict[int, dict[str, Any]], dict[str, tuple[Any, Any]], float]:
    """{seed: evaluate metrics} from the experiments `<names><seed>` already run in `project`, the allowed params
    differences, and the seconds their stages took (every stage's metrics `seconds`)."""
    by_seed, differ, seconds = {}, {}, 0.0
    for row in exp_show(project):
        prefix, _, seed = row["name"].rpartition("-s")
        if f"{prefix}-s" == names and seed.isdigit() and int(seed) in seeds and EVALUATE in row["metrics"]:
            differ.update(same_recipe(params, row, allow))
            if any(int(row["params"][key]) != int(seed) for key in SEED_KEYS):
                raise ValueError(f"experiment {row['name']}: its seeds {SEED_KEYS} are not all {seed}")
            by_seed[int(seed)] = {"evaluate": row["metrics"][EVALUATE],
                                  "teacher": row["metrics"].get("artifacts/teacher/metrics.json", {})}
            seconds += sum(float(m.get("seconds", 0.0)) for m in row["metrics"].values())
    missing = set(seeds) - set(by_seed)
    if missing:
        raise RuntimeError(f"{project}: no experiment {names}<seed> with metrics for seeds {sorted(missing)}")
    return by_seed, differ, seconds


def summarise(by_seed: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    teacher = [m["teacher"].get("val/map50") for m in by_seed.values()]
    if all(v is not None for v in teacher):
        rows.append(spread("teacher (torch FP32)", teacher, []))
    for name in ARTIFACTS:
        values = [m["evaluate"]["artifacts"][name]["map50"] for m in by_seed.values()]
        halves = [(a["map50_ci_high"] - a["map50_ci_low"]) / 2 for a in
                  (m["evaluate"]["artifacts"][name] for m in by_seed.values()) if "map50_ci_low" in a]
        rows.append(spread(name, values, halves))
    return rows


def spread(name: str, values: list[float], halves: list[float]) -> dict[str, Any]:
    return {"artifact": name, "values": values, "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0, "min": min(values), "max": max(values),
            "bootstrap_half_width": statistics.fmean(halves) if halves else None}


def report(header: str, seeds: list[int], rows: list[dict[str, Any]], seconds: float, source: str = "") -> list[str]:
    final = next(r for r in rows if r["artifact"] == "tflite_int8")
    lines = ["# Seed spread of the default chain", "", header, "",
             f"The default params run once per seed ({', '.join(map(str, seeds))}: every training seed and the "
             f"calibration seed; same dataset), {seconds / 60:.0f} min in all. mAP50 on the val split; std is the sample "
             "standard deviation over seeds; half-width is the mean 95 % bootstrap half-width over the val images."
             + (f" {source}" if source else ""),
             "", "| artifact | mAP50 per seed | mean | std over seeds | range | bootstrap half-width |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        half = f"{r['bootstrap_half_width']:.3f}" if r["bootstrap_half_width"] is not None else ""
        lines.append(f"| {r['artifact']} | {' / '.join(f'{v:.3f}' for v in r['values'])} | {r['mean']:.3f} | "
                     f"{r['std']:.4f} | {r['max'] - r['min']:.3f} | {half} |")
    m, sd, first = final["mean"], final["std"], final["values"][0]
    lines += ["", f"Gate floor from this study (final INT8 mAP50): mean - 3 std = {m - 3 * sd:.3f}, mean - 2 std = "
                  f"{m - 2 * sd:.3f}. A floor must also fail a run 25 % under the default one (0.75 x the first "
                  f"seed's {first:.3f} = {0.75 * first:.3f}); where mean - 3 std does not, the spread, not the gate, "
                  f"is what limits it (`gate.min_map50` in params.yaml says which was taken)."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--work", default=None, help="keep the scratch project here (default: a temp folder)")
    parser.add_argument("--out", default="bench/results/seed_spread.md")
    parser.add_argument("--from-project", default=None, help="read experiments already run in this scratch project")
    parser.add_argument("--names", default="alone-s", help="with --from-project: experiment names are NAMES<seed>")
    parser.add_argument("--allow", nargs="*", default=[], help="with --from-project: params keys that may differ")
    args = parser.parse_args()
    if len(set(args.seeds)) < 2:
        parser.error("--seeds needs at least two different seeds")
    if args.from_project and not args.names.endswith("-s"):
        parser.error("--names must end in '-s' (experiments are named <names><seed>, e.g. alone-s0)")
    header = stamp()
    params = load_params(args.params)
    seeds = sorted(set(args.seeds))
    if args.from_project:
        by_seed, differ, seconds = read_seeds(params, seeds, Path(args.from_project), args.names, set(args.allow))
        source = (f"The runs are the experiments `{args.names}<seed>` already made in a scratch project (not run "
                  "again here); their params are these params but for the seeds, the gate's budgets"
                  + "".join(f", `{k}` ({a!r} there, {b!r} here)" for k, (a, b) in differ.items()) + ".")
    else:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            by_seed = run_seeds(params, seeds, Path(args.work or tmp))
        seconds, source = time.perf_counter() - t0, ""
    rows = summarise({s: by_seed[s] for s in sorted(by_seed)})
    write_report(args.out, report(header, sorted(by_seed), rows, seconds, source), rows)


if __name__ == "__main__":
    main()
