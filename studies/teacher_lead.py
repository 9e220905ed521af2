"""Does the teacher lead? (issue 25 item 1) Each teacher recipe is trained per seed beside the student trained alone
(the distill section with alpha 0: its variant, epochs and schedule, no teacher), and the teacher's val mAP50 minus
the student-alone's is reported per seed and as a mean with a 95 % t interval over seeds (paired: the same seed, the
same data). A teacher can teach when the lead is at least `--lead` (0.05) with the interval above 0.

A recipe is params.yaml plus overrides of full keys: `--recipe "lr3_e24: teacher.train.lr0=0.003
teacher.train.epochs=24 teacher.train.min_steps=0"`; `--student "..."` overrides the student-alone reference the same
way (e.g. `distill.train.lr0=0.003`). Training runs in this process, one run at a time, with the torch threads of
`--threads`; the report is rewritten after every run, so a study cut short keeps what it measured.

    python -m studies.teacher_lead [--params params.yaml] [--recipe "NAME: key=value ..."]... [--student "k=v ..."]
        [--seeds 0 1 2] [--threads 2] [--out studies/results/teacher_lead.md]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.stamp import stamp, write_report
from studies.recipe_spread import apply_overrides, dataset_for, parse_recipe, with_seed


def train_one(params: dict[str, Any], role: str, data_yaml: Path, work: Path,
              teacher: Path | None = None) -> dict[str, Any]:
    """Train the teacher (`role` 'teacher') or the student ('student': the distill section; alone without `teacher`,
    else distilled from that checkpoint with the section's alpha, temperature and weights, as the distill stage
    does) of `params`; its val mAP50 and mAP, seconds, images/s, epochs and steps."""
    from pipeline.common.seeding import seed_everything
    from pipeline.config.params import section_from
    from pipeline.config.stages import DistillParams, TeacherParams
    from pipeline.data.data_yaml import load_data_yaml
    from pipeline.io.model_loader import load_model
    from pipeline.model.leafyolo import LeafYOLO
    from pipeline.train.distill import DistillWeights
    from pipeline.train.run import train_model

    cls = TeacherParams if role == "teacher" else DistillParams
    sp = section_from(params, "params.yaml", "teacher" if role == "teacher" else "distill", cls)
    seed_everything(sp.train.seed)
    kd: dict[str, Any] = {}
    if teacher is not None:
        kd = {"teacher": load_model(teacher)[0], "distill": DistillWeights(sp.alpha, sp.temperature, sp.cls_weight,
                                                                            sp.feat_weight)}
    model = LeafYOLO(sp.variant, load_data_yaml(data_yaml).nc, act=sp.act, seed=sp.train.seed)
    t0 = time.perf_counter()
    result = train_model(model, data_yaml, sp.train, work / f"{role}.pt", work / role, **kd)
    return {"variant": sp.variant, "map50": result.metrics["val/map50"], "map": result.metrics["val/map"],
            "seconds": round(time.perf_counter() - t0, 1), "images_per_second": result.images_per_second,
            "epochs": result.epochs, "steps": result.steps, "params": sum(p.numel() for p in model.parameters())}


def lead(teacher: dict[int, float], student: dict[int, float]) -> dict[str, Any] | None:
    """Teacher minus student-alone on the seeds both have: the per-seed differences, their mean and its 95 % t
    interval (NaN with one seed)."""
    seeds = sorted(set(teacher) & set(student))
    if not seeds:
        return None
    diffs = [teacher[s] - student[s] for s in seeds]
    mean = statistics.fmean(diffs)
    half = math.nan
    if len(diffs) > 1:
        from scipy.stats import t  # scipy comes with nncf

        half = float(t.ppf(0.975, len(diffs) - 1)) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return {"seeds": seeds, "diffs": diffs, "mean": mean, "low": mean - half, "high": mean + half}


def verdict(row: dict[str, Any] | None, target: float, ahead: str = "leads", behind: str = "does not lead",
            by: str = " by") -> str:
    """The call on a paired difference (`lead`'s row) against `target`: ahead by at least it, ahead by less, behind,
    or undecided (the interval holds 0)."""
    if row is None:
        return "no paired seed yet"
    if math.isnan(row["low"]):
        return "one seed: no interval"
    if row["low"] >= target:
        return f"{ahead}{by} >= {target:g}"
    if row["low"] > 0:
        return f"{ahead}, but < {target:g} not excluded"
    return behind if row["high"] < 0 else "undecided"


def report(args: argparse.Namespace, recipes: list[tuple[str, dict[str, Any]]], student_overrides: dict[str, Any],
           runs: dict[str, dict[int, dict[str, Any]]], header: str) -> None:
    student = {s: r["map50"] for s, r in runs.get("student", {}).items()}
    lines = ["# Does the teacher lead the student trained alone? (issue 25 item 1)", "", header, "",
             f"Params `{args.params}`; seeds {args.seeds}; {args.threads} torch threads, one run at a time. The "
             "student alone is the distill section with alpha 0 (no teacher)"
             + (f", with {' '.join(f'{k}={v}' for k, v in student_overrides.items())}" if student_overrides else "")
             + ". Lead: teacher val mAP50 minus the student-alone's on the same seed; mean and 95 % t interval over "
               f"seeds; target >= {args.lead:g}.", "",
             "| run | overrides | variant | epochs (steps) | val mAP50 mean | per seed | seconds (img/s) | "
             "lead over student alone | call |", "|---|---|---|---|---:|---|---|---|---|"]
    for name, overrides in [("student", student_overrides), *recipes]:
        done = runs.get(name, {})
        if not done:
            continue
        first = next(iter(done.values()))
        row = None if name == "student" else lead({s: r["map50"] for s, r in done.items()}, student)
        o = " ".join(f"{k}={v}" for k, v in overrides.items()) or "(params.yaml)"
        lines.append(
            f"| {name} | {o} | {first['variant']} | {first['epochs']} ({first['steps']}) | "
            f"{statistics.fmean(r['map50'] for r in done.values()):.3f} | "
            + ", ".join(f"{r['map50']:.3f}" for _, r in sorted(done.items())) + " | "
            + f"{statistics.fmean(r['seconds'] for r in done.values()):.0f} "
              f"({statistics.fmean(r['images_per_second'] for r in done.values()):.0f}) | "
            + ("-" if row is None else f"{row['mean']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}]")
            + f" | {'reference' if name == 'student' else verdict(row, args.lead)} |")
    write_report(args.out, lines, {"runs": runs, "recipes": dict(recipes), "student": student_overrides})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--recipe", action="append", default=[], help="'NAME: key=value ...' (repeatable)")
    parser.add_argument("--student", default="", help="'key=value ...' overrides of the student-alone reference")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lead", type=float, default=0.05, help="the lead a teacher must have (mAP50)")
    parser.add_argument("--out", default="studies/results/teacher_lead.md")
    args = parser.parse_args()
    base = yaml.safe_load(Path(args.params).read_text())
    recipes = [parse_recipe(r) for r in args.recipe] or [("teacher", {})]
    if "student" in {name for name, _ in recipes}:
        parser.error("--recipe: 'student' names the student-alone reference; call the recipe something else")
    student_overrides = parse_recipe(f"student: {args.student}")[1]
    configs = {name: apply_overrides(base, o) for name, o in [("student", student_overrides), *recipes]}  # bad keys
    configs["student"]["distill"]["alpha"] = 0.0
    if len({json.dumps(c["data"], sort_keys=True) for c in configs.values()}) > 1:
        parser.error("--recipe / --student: every run must use the same data section (the lead is paired)")
    if args.threads < 1 or not args.seeds:
        parser.error("--threads must be >= 1 and at least one --seeds value given")
    import torch

    torch.set_num_threads(args.threads)
    header = stamp()
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="teacher_lead_") as tmp:
        data_yaml = dataset_for(configs["student"], Path(tmp) / "data")
        for seed in args.seeds:  # seed by seed: a study cut short has paired rows
            for name in configs:
                work = Path(tmp) / f"{name}-seed{seed}"
                work.mkdir(parents=True)
                role = "student" if name == "student" else "teacher"
                print(f"[teacher_lead] seed {seed}: {name} ({role})", flush=True)
                runs.setdefault(name, {})[seed] = train_one(with_seed(configs[name], seed), role, data_yaml, work)
                print(f"  val mAP50 {runs[name][seed]['map50']:.4f} in {runs[name][seed]['seconds']:.0f} s", flush=True)
                report(args, recipes, student_overrides, runs, header)


if __name__ == "__main__":
    main()
