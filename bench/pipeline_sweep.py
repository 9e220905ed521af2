"""The pipeline's cost and its compression trade-off, as DVC experiments in a scratch copy of the project:

1. a cold `dvc repro` of the default chain, timed, with each stage's own wall time (`seconds` in its metrics);
2. the incremental `dvc exp run -S prune.sparsity=0.4`, timed, with the stages it re-ran;
3. the other sparsities queued (`dvc exp run --queue`) and run by `dvc queue start`;
4. `dvc exp show` collected into a table and a plot of INT8 TFLite size vs INT8 mAP50, FP32 ONNX points beside.

    python -m bench.pipeline_sweep [--params params.yaml] [--sparsities 0 0.2 0.3 0.4 0.5] [--extra distill.alpha=0]
                                   [--out bench/results/pipeline_sweep.md] [--project DIR]

`--project` reuses a scratch project whose HEAD commit is a cold `dvc repro` of the same params (for example the
one `python -m bench.seed_spread --work W` leaves in W/project): step 1 is then read from its metrics instead of
run again, and rows of other seeds are left out.

Budgets are relaxed inside the scratch project so every point is kept (a sparsity that misses the size budget
would otherwise fail its experiment at the gate); the table shows each point's verdict against the real budgets.
"""

from __future__ import annotations

import argparse
import copy
import math
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.dvc_project import commit, exp_show, load_params, make_project, run
from bench.dvc_queue import drive_queue
from bench.stamp import stamp, write_report
from pipeline.config.stages import GateParams
from pipeline.evaluate.gate import check_budgets
from pipeline.io.jsonio import read_json

STAGES = ("data", "teacher", "distill", "prune", "finetune", "calibrate", "onnx", "tflite", "evaluate")
INCREMENTAL = 0.4


def metrics_file(stage: str) -> str:
    return f"artifacts/{stage}/{'report' if stage == 'data' else 'metrics'}.json"


def ran_stages(stdout: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", stdout)


def timed(cmd: list[str], project: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = run(cmd, project)
    return time.perf_counter() - t0, proc.stdout


def wait_for_queue(project: Path, names: list[str], timeout_s: float) -> None:
    """Run the queued experiments `names` one at a time (bench.dvc_queue.drive_queue) and wait for them; a failed
    task raises with its log."""
    status, _, _ = drive_queue(project, names, jobs=1, timeout_s=timeout_s, poll_s=10.0)
    failed = [n for n, s in status.items() if s != "Success"]
    if failed:
        logs = "\n".join(run(["dvc", "queue", "logs", n], project).stdout[-3000:] for n in failed[:1])
        raise RuntimeError(f"queued experiments did not succeed: {status}\n{logs}")


def point(row: dict[str, Any], budgets: GateParams) -> dict[str, Any]:
    m = row["metrics"]
    art = m[metrics_file("evaluate")]["artifacts"]
    final = m[metrics_file("evaluate")]["final"]
    prune = m[metrics_file("prune")]
    return {"name": row["name"], "sparsity": row["params"]["prune.sparsity"],
            "alpha": row["params"].get("distill.alpha"), "achieved_sparsity": prune["achieved_sparsity"],
            "params": prune["params_after"], "fp32_map50": art["finetune"]["map50"],
            "fp32_ci": [art["finetune"].get("map50_ci_low"), art["finetune"].get("map50_ci_high")],
            "int8_ci": [final.get("map50_ci_low"), final.get("map50_ci_high")],
            "onnx_fp32_bytes": art["onnx_fp32"]["size_bytes"], "onnx_fp32_map50": art["onnx_fp32"]["map50"],
            "int8_bytes": final["size_bytes"], "int8_map50": final["map50"], "int8_map": final["map"],
            "int8_drop": final["int8_drop_map50"], "gate_passed": check_budgets(final, budgets)["passed"],
            "seconds": {s: m[metrics_file(s)].get("seconds") for s in STAGES if metrics_file(s) in m}}


def plot(points: list[dict[str, Any]], max_bytes: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key_bytes, key_map, label, marker in (("int8_bytes", "int8_map50", "TFLite full INT8", "o"),
                                              ("onnx_fp32_bytes", "onnx_fp32_map50", "ONNX FP32", "s")):
        ax.scatter([p[key_bytes] / 1e6 for p in points], [p[key_map] for p in points], marker=marker, label=label)
        for p in points:
            ax.annotate(p["name"], (p[key_bytes] / 1e6, p[key_map]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.axvline(max_bytes / 1e6, color="red", linestyle="--", linewidth=1, label=f"size budget {max_bytes:,} B")
    ax.set_xlabel("file size (MB)")
    ax.set_ylabel("val mAP50")
    ax.set_title("Compression trade-off: prune.sparsity sweep")
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def training_throughput(ips: dict[str, float]) -> str:
    """The cold run's training images/s, named by what the stages trained (no teacher: the distill stage trains
    the student alone)."""
    if math.isnan(ips["teacher"]):
        return f"no teacher trained (`teacher.variant: none`), the student alone {ips['distill']:.1f}, " \
               f"fine-tune {ips['finetune']:.1f}"
    return (f"teacher {ips['teacher']:.1f}, distillation (student + frozen teacher) {ips['distill']:.1f}, "
            f"fine-tune {ips['finetune']:.1f}")


def report_lines(header: str, cold: dict[str, Any], incr: dict[str, Any], points: list[dict[str, Any]],
                 budgets: GateParams, png: Path) -> list[str]:
    lines = ["# Pipeline cost and compression trade-off (DVC experiments)", "", header, "",
             "## Cost of a run", "",
             (f"Cold `dvc repro` (empty cache): {cold['wall']:.0f} s"
              + (" (sum of the stages' own seconds, read from the reused project's metrics: that repro ran "
                 "earlier)" if cold.get("reused") else "") + ". ") +
             f"Incremental `dvc exp run -S prune.sparsity={INCREMENTAL}`: {incr['wall']:.0f} s, "
             f"re-ran {', '.join(incr['ran']) or 'nothing'}.", "",
             "| stage | cold repro (s) | after `-S prune.sparsity=0.4` (s) |", "|---|---:|---:|"]
    whole = "not timed (reused)" if cold.get("reused") else f"{cold['wall']:.1f}"
    for s in STAGES:
        c, i = cold["seconds"].get(s), incr["seconds"].get(s) if s in incr["ran"] else None
        lines.append(f"| {s} | {c:.1f} | {f'{i:.1f}' if i is not None else 'cached'} |")
    lines += [f"| **sum of stages** | {sum(cold['seconds'].values()):.1f} | "
              f"{sum(v for k, v in incr['seconds'].items() if k in incr['ran']):.1f} |",
              f"| whole command (incl. dvc and gate) | {whole} | {incr['wall']:.1f} |", "",
              f"Training throughput (images/s, this CPU): {training_throughput(cold['ips'])}.", "",
              "## Trade-off", "",
              f"![INT8 size vs mAP50]({png.name})", "",
              f"Gate column: the real budgets (size <= {budgets.max_bytes:,} B, mAP50 >= {budgets.min_map50}, "
              f"INT8 drop <= {budgets.max_int8_drop}, INT8 keeps >= {budgets.min_int8_retention} of FP32 mAP50).", "",
              "mAP50 intervals: 95 % bootstrap over the val images (`evaluate.bootstrap_resamples`).", "",
              "| experiment | prune.sparsity | removed | params | FP32 mAP50 [95% interval] | ONNX FP32 bytes | "
              "INT8 TFLite bytes | INT8 mAP50 [95% interval] | INT8 mAP50-95 | INT8 drop | gate |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for p in points:
        lines.append(f"| {p['name']} | {p['sparsity']} | {p['achieved_sparsity']:.3f} | {p['params']:,} | "
                     f"{with_ci(p['fp32_map50'], p['fp32_ci'])} | {p['onnx_fp32_bytes']:,} | {p['int8_bytes']:,} | "
                     f"{with_ci(p['int8_map50'], p['int8_ci'])} | {p['int8_map']:.3f} | {p['int8_drop']:+.3f} | "
                     f"{'pass' if p['gate_passed'] else 'FAIL'} |")
    return lines


def with_ci(value: float, ci: list) -> str:
    return f"{value:.3f}" if ci[0] is None else f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def relaxed_gate(gate: dict[str, Any]) -> dict[str, Any]:
    """Every budget of `gate` opened as wide as it goes (floors 0, fractions 1, byte limits 10**12), so no sweep point
    fails its experiment at the gate; a key of another kind stops here, naming it."""
    out = {}
    for key in gate:
        if key.startswith("min_"):
            out[key] = 0.0
        elif key.startswith("max_") and key.endswith("_bytes"):
            out[key] = 10**12
        elif key.startswith("max_"):
            out[key] = 1.0
        else:
            raise ValueError(f"gate.{key}: not a min_ / max_ budget, so the sweep cannot relax it")
    GateParams(**out)
    return out


def reuse_project(project: Path, params: dict[str, Any]) -> Path:
    """An existing scratch project, on its HEAD commit, whose params equal `params` (the relaxed ones)."""
    run(["git", "reset", "-q", "--hard", "HEAD"], project)
    run(["dvc", "checkout", "--force"], project)
    if load_params(project / "params.yaml") != params:
        raise ValueError(f"{project}/params.yaml differs from the params of this sweep; run without --project")
    status = run(["dvc", "status"], project).stdout
    if "up to date" not in status:
        raise ValueError(f"{project}: `dvc status` is not clean, its HEAD is not a finished repro:\n{status}")
    return project


def throughput(project: Path) -> dict[str, float]:
    return {s: read_json(project / metrics_file(s)).get("images_per_second", float("nan"))
            for s in ("teacher", "distill", "finetune")}


def stage_seconds(project: Path, stages: tuple[str, ...] | list[str] = STAGES) -> dict[str, float]:
    return {s: read_json(project / metrics_file(s))["seconds"] for s in stages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--sparsities", nargs="+", type=float, default=[0.0, 0.2, 0.3, 0.4, 0.5])
    parser.add_argument("--extra", nargs="*", default=[], metavar="KEY=VALUE",
                        help="more queued experiments, one `-S` override each (e.g. distill.alpha=0)")
    parser.add_argument("--work", default=None, help="keep the scratch project here (default: a temp folder)")
    parser.add_argument("--project", default=None, help="reuse this project's committed cold repro (see above)")
    parser.add_argument("--out", default="bench/results/pipeline_sweep.md")
    parser.add_argument("--timeout", type=float, default=4 * 3600,
                        help="seconds the queued experiments may take before their workers are killed")
    args = parser.parse_args()
    header = stamp()  # the commit whose pipeline is copied into the scratch project, now
    params = load_params(args.params)
    budgets = GateParams(**params["gate"])
    base = float(params["prune"]["sparsity"])
    relaxed = copy.deepcopy(params)
    relaxed["gate"] = relaxed_gate(params["gate"])
    with tempfile.TemporaryDirectory() as tmp:
        if args.project:
            project = reuse_project(Path(args.project), relaxed)
            print(f"[sweep 1/4] reusing the cold dvc repro committed in {project}", flush=True)
            seconds = stage_seconds(project)
            cold = {"wall": sum(seconds.values()), "seconds": seconds, "ips": throughput(project), "reused": True}
        else:
            project = make_project(Path(args.work or tmp) / "project", relaxed)
            print(f"[sweep 1/4] cold dvc repro in {project}", flush=True)
            wall, _ = timed(["dvc", "repro"], project)
            cold = {"wall": wall, "seconds": stage_seconds(project), "ips": throughput(project)}
            commit(project, f"baseline prune.sparsity={base}")
        print(f"  {cold['wall']:.0f} s; stages {cold['seconds']}", flush=True)
        print(f"[sweep 2/4] dvc exp run -S prune.sparsity={INCREMENTAL}", flush=True)
        wall, out = timed(["dvc", "exp", "run", "-n", f"sparsity-{INCREMENTAL}", "-S",
                           f"prune.sparsity={INCREMENTAL}"], project)
        ran = [s for s in ran_stages(out) if s in STAGES]
        incr = {"wall": wall, "ran": ran, "seconds": stage_seconds(project, ran)}
        print(f"  {wall:.0f} s; re-ran {ran}", flush=True)
        queued = [(f"sparsity-{s:g}", f"prune.sparsity={s:g}") for s in args.sparsities if s not in (base, INCREMENTAL)]
        queued += [(re.sub(r"[=.]", "-", kv), kv) for kv in args.extra]
        print(f"[sweep 3/4] queue {len(queued)} experiments and dvc queue start", flush=True)
        for name, override in queued:
            run(["dvc", "exp", "run", "--queue", "-n", name, "-S", override], project)
        if queued:
            wait_for_queue(project, [name for name, _ in queued], args.timeout)
        print("[sweep 4/4] dvc exp show", flush=True)
        seed = params["distill"]["train"]["seed"]
        rows = [r for r in exp_show(project) if r["params"].get("distill.train.seed") == seed]
    points = [point(r, budgets) for r in rows]
    names = {n for n, _ in queued} | {f"sparsity-{INCREMENTAL}"}
    missing = names - {p["name"] for p in points}
    if missing:
        raise RuntimeError(f"experiments missing from `dvc exp show`: {sorted(missing)}")
    for p in points:
        if p["name"] not in names:
            p["name"] = f"baseline (sparsity-{base:g})"
    points.sort(key=lambda p: (p["alpha"] != params["distill"]["alpha"], p["sparsity"]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    plot([p for p in points if p["alpha"] == params["distill"]["alpha"]], budgets.max_bytes, png)
    write_report(out, report_lines(header, cold, incr, points, budgets, png),
                 {"cold": cold, "incremental": incr, "points": points})


if __name__ == "__main__":
    main()
