"""Does distillation pay? (issue 25 item 3) Per seed, one teacher is trained, then the student twice at the same
student epochs: alone (the distill section with alpha 0) and distilled from that teacher (the distill section as
given: alpha, temperature, class-score and feature weights), and each `--arm` besides. The gain is distilled minus
alone, val mAP50 on the same seed and data (paired), reported per seed and as a mean with a 95 % t interval over
seeds. Distillation pays when the interval's lower end is at least `--gain` (0.03).

`--set` overrides full params keys for every run (the teacher's recipe, the data, the epochs); an `--arm "NAME:
distill.alpha=0.3 ..."` is a further distilled run from the same teacher. Runs happen in this process, one at a time,
with the torch threads of `--threads`; the report is rewritten after every run, so a run cut short keeps what it
measured.

    python -m bench.kd_gain [--params params.yaml] [--set "key=value ..."] [--arm "NAME: key=value ..."]...
        [--seeds 0 1 2] [--threads 2] [--gain 0.03] [--lead 0.05] [--out bench/results/kd_gain.md]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bench.stamp import stamp, write_report
from studies.recipe_spread import apply_overrides, dataset_for, parse_recipe, with_seed
from studies.teacher_lead import lead, train_one
from studies.teacher_lead import verdict as lead_verdict

ALONE = "alone"
TEACHER = "teacher"


def verdict(row: dict[str, Any] | None, target: float) -> str:
    return lead_verdict(row, target, ahead="pays", behind="costs accuracy", by="")


def configs_from(base: dict[str, Any], common: dict[str, Any], arms: list[tuple[str, dict[str, Any]]]
                 ) -> dict[str, dict[str, Any]]:
    """Each run's params: the teacher and the student alone from `base` + `common` (alpha 0 for the latter), each
    arm from those + its overrides; raises KeyError on a key params.yaml lacks, ValueError on an arm that does not
    distill or changes what must stay paired (the data, the student's variant and budget, the teacher)."""
    shared = apply_overrides(base, common)
    if shared["teacher"]["variant"] == "none" or not shared["distill"]["alpha"] > 0:
        raise ValueError(f"the params train no teacher or do not distill (teacher.variant {shared['teacher']['variant']}, "
                         f"distill.alpha {shared['distill']['alpha']}; params.yaml's default since the student alone "
                         "won bench.chain_vs_alone): add --set 'teacher.variant=leafyolo_s distill.alpha=0.7'")
    out = {TEACHER: shared, ALONE: apply_overrides(shared, {"distill.alpha": 0.0})}
    for name, overrides in arms:
        if name in (TEACHER, ALONE):
            raise ValueError(f"--arm {name!r}: that name is taken by the {name} run")
        bad = [k for k in overrides if k.split(".")[0] != "distill" or k.startswith("distill.train.")
               or k == "distill.variant"]
        if bad:
            raise ValueError(f"--arm {name!r}: {', '.join(bad)} would unpair the comparison (an arm may change only "
                             "distill keys outside distill.train and distill.variant; use --set for every run)")
        out[name] = apply_overrides(shared, overrides)
        if not out[name]["distill"]["alpha"] > 0:
            raise ValueError(f"--arm {name!r}: distill.alpha is {out[name]['distill']['alpha']}; an arm must distill "
                             "(alpha > 0): the student alone is already run")
    return out


def report(args: argparse.Namespace, common: dict[str, Any], arms: list[tuple[str, dict[str, Any]]],
           configs: dict[str, dict[str, Any]], runs: dict[str, dict[int, dict[str, Any]]], header: str) -> None:
    alone = {s: r["map50"] for s, r in runs.get(ALONE, {}).items()}
    dataset = configs[TEACHER]["data"]["source"]
    lines = ["# Does distillation pay? (issue 25 item 3)", "", header, "",
             f"Params `{args.params}`" + (f" with {' '.join(f'{k}={v}' for k, v in common.items())}" if common
                                          else "")
             + f"; data `{dataset}`; seeds {args.seeds}; {args.threads} torch threads, one run at a time. Per seed one "
               "teacher is trained; the student alone (alpha 0) and each distilled arm train the same variant for the "
               "same epochs from the same seed. Gain: distilled val mAP50 minus the student-alone's on the same seed; "
               f"mean and 95 % t interval over seeds; target >= {args.gain:g}. The teacher's row gives its lead over the "
               f"student alone the same way (target >= {args.lead:g}).", "",
             "| run | arm overrides | variant | alpha | epochs (steps) | val mAP50 mean | per seed | seconds (img/s) | "
             "over alone | call |", "|---|---|---|---:|---|---:|---|---|---|---|"]
    names = [TEACHER, ALONE, *(n for n, _ in arms)]
    arm_overrides = dict(arms)
    for name in names:
        done = runs.get(name, {})
        if not done:
            continue
        first = next(iter(done.values()))
        row = None if name == ALONE else lead({s: r["map50"] for s, r in done.items()}, alone)
        alpha = "-" if name == TEACHER else f"{configs[name]['distill']['alpha']:g}"
        call = ("reference" if name == ALONE else f"teacher {lead_verdict(row, args.lead)}" if name == TEACHER
                else verdict(row, args.gain))
        lines.append(
            f"| {name} | {' '.join(f'{k}={v}' for k, v in arm_overrides.get(name, {}).items()) or '-'} | "
            f"{first['variant']} | {alpha} | {first['epochs']} ({first['steps']}) | "
            f"{statistics.fmean(r['map50'] for r in done.values()):.3f} | "
            + ", ".join(f"{r['map50']:.3f}" for _, r in sorted(done.items())) + " | "
            + f"{statistics.fmean(r['seconds'] for r in done.values()):.0f} "
              f"({statistics.fmean(r['images_per_second'] for r in done.values()):.0f}) | "
            + ("-" if row is None else f"{row['mean']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}]") + f" | {call} |")
    gains = {n: lead({s: r["map50"] for s, r in runs[n].items()}, alone) for n in names[2:] if n in runs}
    teacher_lead = lead({s: r["map50"] for s, r in runs[TEACHER].items()}, alone) if TEACHER in runs else None
    write_report(args.out, lines, {"runs": runs, "set": common, "arms": arm_overrides, "dataset": dataset,
                                   "seeds": args.seeds, "threads": args.threads, "target": args.gain, "gains": gains,
                                   "teacher_lead": teacher_lead, "lead_target": args.lead})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--set", default="", help="'key=value ...' overrides for every run")
    parser.add_argument("--arm", action="append", default=[], help="'NAME: distill.key=value ...' (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gain", type=float, default=0.03, help="the gain distillation must show (mAP50)")
    parser.add_argument("--lead", type=float, default=0.05, help="the lead the teacher should have (mAP50)")
    parser.add_argument("--out", default="bench/results/kd_gain.md")
    args = parser.parse_args()
    if args.threads < 1 or not args.seeds or len(set(args.seeds)) != len(args.seeds):
        parser.error("--threads must be >= 1 and --seeds distinct values, at least one")
    try:
        base = yaml.safe_load(Path(args.params).read_text())
        common = parse_recipe(f"set: {args.set}")[1]
        arms = [("distilled", {})] + [parse_recipe(a) for a in args.arm]
        configs = configs_from(base, common, arms)
    except (OSError, KeyError, ValueError) as exc:
        parser.error(str(exc).strip("'\""))
    import torch

    torch.set_num_threads(args.threads)
    header = stamp()
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="kd_gain_") as tmp:
        data_yaml = dataset_for(configs[TEACHER], Path(tmp) / "data")
        for seed in args.seeds:  # seed by seed: a run cut short has paired rows
            work = Path(tmp) / f"seed{seed}"
            for name, config in configs.items():
                (work / name).mkdir(parents=True)
                role = TEACHER if name == TEACHER else "student"
                teacher = None if name in (TEACHER, ALONE) else work / TEACHER / "teacher.pt"
                print(f"[kd_gain] seed {seed}: {name}", flush=True)
                runs.setdefault(name, {})[seed] = train_one(with_seed(config, seed), role, data_yaml, work / name,
                                                            teacher)
                print(f"  val mAP50 {runs[name][seed]['map50']:.4f} in {runs[name][seed]['seconds']:.0f} s", flush=True)
                report(args, common, arms, configs, runs, header)


if __name__ == "__main__":
    main()
