"""Fewer, wider layers (issue 13, item 3): student variants at leafyolo_u's parameter count with fewer convolutions,
trained through the params.yaml recipe (distill -> prune -> finetune, after a teacher per dataset and seed when the
recipe distils) on several datasets and seeds, against leafyolo_u; plus what each variant's deployable file costs
(INT8 TFLite bytes per parameter and LiteRT latency, measured on this machine).

A candidate is kept only if its bytes per parameter and its latency are lower AND its final mAP50 is better or
equal on every dataset: the 95 % interval of the paired seed difference lies above zero (better) or above
-`--margin` (equal, a non-inferiority call); a wider interval is undecided, which does not keep it.

    # training (CUDA when present; resumable: finished runs in --results are skipped)
    python -m studies.arch_compare train --cases default:synthetic:128 bccd:../shared/datasets/bccd/data.yaml:192:3 \\
        --seeds 0 1 2 --jobs 4 --results runs/arch/results.json [--budget-s 3600]
    # deployable cost of every variant, then the report
    python -m studies.arch_compare report --results runs/arch/results.json --sizes 128 256 \\
        [--out studies/results/arch_compare.md]

A case is NAME:DATA:IMGSZ[:EPOCH_SCALE]; DATA `synthetic` generates the default dataset (params.yaml `data`) in the
work folder; EPOCH_SCALE multiplies every stage's epochs (small datasets take fewer steps per epoch). The faster
candidates of studies/arch_latency.py (issue 26) are trainable here too: `--variants leafyolo_u leafyolo_u_s4`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.io.jsonio import write_json
from pipeline.model.variants import VARIANTS, VariantSpec

BASELINE = "leafyolo_u"
# Candidates: the baseline's widths with every Ghost bottleneck of the backbone and neck taken out (its CSP blocks
# keep their two 1x1 branches and fuse), and the parameters put back into a wider neck (shared head included).
CANDIDATES: dict[str, VariantSpec] = {
    "leafyolo_uw": VariantSpec((16, 32, 64, 128, 224), (0, 0, 0), neck_width=88, neck_depth=0, head_depth=1),
}


def register_candidates() -> None:
    """Make the candidates buildable by name in this process only (study-only: the library's VARIANTS stay as they
    are elsewhere; a kept candidate moves to pipeline/model/variants.py)."""
    for name, spec in CANDIDATES.items():
        VARIANTS.setdefault(name, spec)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    data: str  # 'synthetic' or a data.yaml
    imgsz: int
    epoch_scale: float = 1.0

    @property
    def key(self) -> str:
        return f"{self.name}@{self.imgsz}"


def parse_case(text: str) -> Case:
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise argparse.ArgumentTypeError(f"case {text!r}: expected NAME:DATA:IMGSZ[:EPOCH_SCALE]")
    try:
        imgsz, scale = int(parts[2]), float(parts[3]) if len(parts) == 4 else 1.0
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"case {text!r}: IMGSZ must be an int, EPOCH_SCALE a number ({e})") from e
    if imgsz % 32 or imgsz < 64 or scale <= 0:
        raise argparse.ArgumentTypeError(f"case {text!r}: IMGSZ must be a multiple of 32 >= 64, EPOCH_SCALE > 0")
    if parts[1] != "synthetic" and not Path(parts[1]).is_file():
        raise argparse.ArgumentTypeError(f"case {text!r}: {parts[1]} is not a file")
    return Case(parts[0], parts[1], imgsz, scale)


# ---------------------------------------------------------------- one run (a child process)


def _train_params(section: Any, case: Case, seed: int, workers: int) -> Any:
    t = section.train
    return dataclasses.replace(t, imgsz=case.imgsz, seed=seed, workers=workers,
                               epochs=max(1, round(t.epochs * case.epoch_scale)))


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train one job in this process: the teacher of (case, seed), or one variant's distill -> prune -> finetune."""
    from bench.chain import train_student, train_teacher
    from pipeline.config.params import load_section
    from pipeline.config.stages import DistillParams, FinetuneParams, PruneParams, TeacherParams
    from pipeline.io.model_loader import load_model

    case, seed, work = Case(**job["case"]), job["seed"], Path(job["work"])
    t0 = time.time()
    if job["variant"] == "teacher":
        tp = load_section(job["params"], "teacher", TeacherParams)
        r = train_teacher(dataclasses.replace(tp, train=_train_params(tp, case, seed, job["workers"])),
                          job["data_yaml"], Path(job["teacher"]), work)
        return {"map50": r.metrics["val/map50"], "map": r.metrics["val/map"], "seconds": time.time() - t0,
                "images_per_second": r.images_per_second, "device": r.device}
    dp = load_section(job["params"], "distill", DistillParams)
    fp = load_section(job["params"], "finetune", FinetuneParams)
    dp = dataclasses.replace(dp, variant=job["variant"], train=_train_params(dp, case, seed, job["workers"]))
    fp = dataclasses.replace(fp, train=_train_params(fp, case, seed, job["workers"]))
    teacher = load_model(job["teacher"])[0] if job["teacher"] else None
    runs = train_student(teacher, dp, load_section(job["params"], "prune", PruneParams), fp, job["data_yaml"], work)
    return {"params": runs.pruned.params_before, "params_pruned": runs.pruned.params_after,
            "distill_map50": runs.distill.metrics["val/map50"], "map50": runs.finetune.metrics["val/map50"],
            "map": runs.finetune.metrics["val/map"], "seconds": time.time() - t0,
            "images_per_second": runs.distill.images_per_second, "device": runs.distill.device}


# ---------------------------------------------------------------- the scheduler


def job_id(case: Case, seed: int, variant: str) -> str:
    return f"{case.key}/seed{seed}/{variant}"


def needs_teacher(params: str) -> bool:
    """Whether the recipe in `params` distils (a teacher per case and seed is trained first): `teacher.variant`
    other than 'none' and `distill.alpha` or `finetune.alpha` above 0. The default recipe trains the student alone."""
    from pipeline.config.params import load_section
    from pipeline.config.stages import NO_TEACHER, DistillParams, FinetuneParams, TeacherParams

    variant = load_section(params, "teacher", TeacherParams).variant
    alpha = max(load_section(params, "distill", DistillParams).alpha, load_section(params, "finetune", FinetuneParams).alpha)
    return variant != NO_TEACHER and alpha > 0


def make_jobs(cases: list[Case], seeds: list[int], variants: list[str], work: Path, params: str,
              data_yamls: dict[str, str], workers: int, teacher: bool = True) -> list[dict[str, Any]]:
    """Seed-major order, so a run cut short by --budget-s still has every variant of the first seeds. `teacher`
    False (a recipe that does not distil): no teacher runs, every variant starts at once."""
    jobs = []
    for seed in seeds:
        for case in cases:
            ckpt = str(work / "teachers" / f"{case.key}-seed{seed}.pt") if teacher else None
            base = {"case": dataclasses.asdict(case), "seed": seed, "params": params, "teacher": ckpt,
                    "data_yaml": data_yamls[case.data], "workers": workers}
            if teacher:
                jobs.append({**base, "id": job_id(case, seed, "teacher"), "variant": "teacher", "needs": None,
                             "work": str(work / "runs" / case.key / f"seed{seed}" / "teacher")})
            for v in variants:
                jobs.append({**base, "id": job_id(case, seed, v), "variant": v,
                             "needs": job_id(case, seed, "teacher") if teacher else None,
                             "work": str(work / "runs" / case.key / f"seed{seed}" / v)})
    return jobs


def prepare_data(cases: list[Case], params: str, work: Path) -> dict[str, str]:
    from pipeline.config.params import load_section
    from pipeline.config.stages import DataParams
    from pipeline.data.synthetic import generate_dataset

    out = {}
    for case in cases:
        if case.data == "synthetic" and "synthetic" not in out:
            p = load_section(params, "data", DataParams)
            folder = work / "data-synthetic"
            if not (folder / "data.yaml").is_file():
                print(f"[arch] generating the default dataset ({p.n_train} train / {p.n_val} val) in {folder}",
                      flush=True)
                generate_dataset(folder, n_train=p.n_train, n_val=p.n_val, imgsz=p.imgsz, seed=p.seed,
                                 min_size=p.min_object_px, max_size=p.max_object_px, max_clutter=p.max_clutter,
                                 max_objects=p.max_objects)
            out["synthetic"] = str(folder / "data.yaml")
        elif case.data != "synthetic":
            out[case.data] = str(Path(case.data).resolve())
    return out


def schedule(jobs: list[dict[str, Any]], results_path: Path, n_parallel: int, budget_s: float,
             threads: int) -> dict[str, Any]:
    results: dict[str, Any] = json.loads(results_path.read_text()) if results_path.is_file() else {}
    pending = [j for j in jobs if results.get(j["id"], {}).get("status") != "done"]
    running: dict[str, tuple[subprocess.Popen, dict[str, Any], float]] = {}
    start, done_before = time.time(), len(jobs) - len(pending)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    print(f"[arch] {len(jobs)} runs, {done_before} already done, {n_parallel} at a time", flush=True)
    while pending or running:
        for jid, (proc, job, t0) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[jid]
            out = Path(job["work"]) / "result.json"
            if proc.returncode == 0 and out.is_file():
                results[jid] = {**json.loads(out.read_text()), "status": "done", "variant": job["variant"],
                                "case": job["case"]["name"], "imgsz": job["case"]["imgsz"], "seed": job["seed"]}
            else:
                log = (Path(job["work"]) / "log.txt").read_text(errors="replace")[-1500:]
                results[jid] = {"status": "failed", "returncode": proc.returncode, "log_tail": log}
            write_json(results_path, results)
            n_done = sum(1 for j in jobs if results.get(j["id"], {}).get("status") == "done")
            print(f"[arch {n_done}/{len(jobs)}] {jid}: {results[jid].get('status')} "
                  f"mAP50 {results[jid].get('map50', float('nan')):.3f} in {time.time() - t0:.0f} s "
                  f"({time.time() - start:.0f} s elapsed)", flush=True)
        failed = {j for j, r in results.items() if r.get("status") == "failed"}
        if time.time() - start > budget_s:
            for jid, (proc, _, _) in running.items():
                proc.kill()
                results[jid] = {"status": "cut", "reason": f"--budget-s {budget_s:.0f} reached"}
            write_json(results_path, results)
            print(f"[arch] budget reached: {len(running)} runs stopped, {len(pending)} not started", flush=True)
            break
        for job in list(pending):
            if len(running) >= n_parallel:
                break
            if job["needs"] in failed:
                pending.remove(job)
                results[job["id"]] = {"status": "failed", "log_tail": f"its teacher {job['needs']} failed"}
                continue
            if job["needs"] and results.get(job["needs"], {}).get("status") != "done":
                continue
            pending.remove(job)
            Path(job["work"]).mkdir(parents=True, exist_ok=True)
            if job["teacher"]:
                Path(job["teacher"]).parent.mkdir(parents=True, exist_ok=True)
            log = open(Path(job["work"]) / "log.txt", "w")
            proc = subprocess.Popen([sys.executable, "-m", "studies.arch_compare", "one", json.dumps(job)],
                                    stdout=log, stderr=subprocess.STDOUT, env=env)
            log.close()
            running[job["id"]] = (proc, job, time.time())
        time.sleep(1.0)
    return results


# ---------------------------------------------------------------- deployable cost (this machine)


def deploy_costs(variants: list[str], sizes: list[int], nc: int, sparsity: float, rounds: int = 5,
                 runs: int = 40) -> dict[str, dict[str, Any]]:
    """Per variant and size: the pruned (random-init) model's stripped per-tensor INT8 TFLite bytes and LiteRT
    latency (1 thread; median over `rounds` interleaved rounds of `runs` calls). Size and speed do not depend on
    the weights' values; pruning by magnitude of random weights removes as many channels as trained ones do."""
    import numpy as np
    import torch

    from bench.deploy_compare import calibration_images
    from pipeline.compress.bytes_model import conv_totals
    from pipeline.compress.prune import prune
    from pipeline.export.onnx_export import export_onnx
    from pipeline.export.tflite_export import export_tflite_int8
    from pipeline.export.tflite_size import size_breakdown, strip_tflite
    from pipeline.infer.backends import TFLiteBackend
    from pipeline.infer.latency import measure_latency
    from pipeline.model.leafyolo import LeafYOLO

    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for imgsz in sizes:
            calib = calibration_images(imgsz, 32, Path(tmp))
            for v in variants:
                model = LeafYOLO(v, nc, seed=0).eval()
                params = sum(p.numel() for p in model.parameters())
                convs = sum(1 for m in model.modules() if isinstance(m, torch.nn.Conv2d))
                prune(model, sparsity, imgsz, verbose=False)
                model.eval()
                weights, channels = conv_totals(model)
                onnx = Path(tmp) / f"{v}-{imgsz}.onnx"
                export_onnx(model, onnx, imgsz)
                tfl = Path(tmp) / f"{v}-{imgsz}.tflite"
                export_tflite_int8(onnx, Path(tmp), calib, out_path=tfl, keep_float32=False, quant_type="per-tensor")
                strip_tflite(tfl, tfl, calib[:8], micro=False)
                size = size_breakdown(tfl)
                files[(v, imgsz)] = tfl
                out.setdefault(v, {})[str(imgsz)] = {
                    "params": params, "convs": convs, "params_pruned": sum(p.numel() for p in model.parameters()),
                    "channels_pruned": channels, "bytes": size["total"], "bytes_per_param": size["bytes_per_param"],
                    "structure": size["parts"]["structure"], "biases": size["parts"]["biases"]}
                print(f"[deploy] {v} @ {imgsz}: {size['total']:,} bytes, {size['bytes_per_param']:.4f} B/param, "
                      f"{convs} convs", flush=True)
        times: dict[tuple[str, int], list[float]] = {k: [] for k in files}
        for r in range(rounds):  # interleaved, so drift in the machine's speed hits every variant alike
            for key, f in files.items():
                times[key].append(measure_latency(TFLiteBackend(f, num_threads=1), key[1], runs=runs,
                                                  warmup=5, seed=r)["latency_ms_median"])
        for (v, imgsz), ts in times.items():
            out[v][str(imgsz)]["latency_ms"] = float(np.median(ts))
            out[v][str(imgsz)]["latency_ms_rounds"] = [round(t, 4) for t in ts]
    return out


# ---------------------------------------------------------------- the report


def paired(results: dict[str, Any], case_key: str, variant: str, key: str = "map50") -> dict[str, Any] | None:
    """`key` (mAP50 after finetune, or `distill_map50` before pruning) of `variant` and of the baseline on the seeds
    both finished, and the mean paired difference with a 95 % t interval over seeds (same seed = same teacher)."""
    def by_seed(v: str) -> dict[int, float]:
        return {r["seed"]: r[key] for k, r in results.items()
                if r.get("status") == "done" and k.startswith(case_key + "/") and r["variant"] == v}
    mine, base = by_seed(variant), by_seed(BASELINE)
    seeds = sorted(set(mine) & set(base))
    if not seeds:
        return None
    diffs = [mine[s] - base[s] for s in seeds]
    mean = statistics.fmean(diffs)
    if len(diffs) > 1:
        from scipy.stats import t  # scipy comes with nncf

        half = float(t.ppf(0.975, len(diffs) - 1)) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    else:
        half = math.nan
    return {"seeds": seeds, "map50": [mine[s] for s in seeds], "base": [base[s] for s in seeds],
            "diff": mean, "low": mean - half, "high": mean + half}


def _diff(p: dict[str, Any] | None) -> str:
    return "" if p is None else f"{p['diff']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}] ({len(p['seeds'])} seeds)"


def _call(p: dict[str, Any], margin: float) -> str:
    """Where the 95 % interval of the paired difference lies: above 0 'better'; below 0 'lower'; above -margin
    'equal' (a non-inferiority call); anything wider 'undecided' (more seeds needed)."""
    if math.isnan(p["low"]):
        return "one seed only"
    if p["low"] > 0:
        return "better"
    if p["high"] < 0:
        return "lower"
    return "equal" if p["low"] >= -margin else "undecided"


def report(results: dict[str, Any], deploy: dict[str, Any], variants: list[str], sizes: list[int],
           margin: float) -> list[str]:
    lines = ["## Deployable cost (pruned 30 %, per-tensor INT8 TFLite, stripped; LiteRT 1 thread)", "",
             "| variant | convs | params | " + " | ".join(f"bytes @{s} | B/param @{s} | ms @{s}" for s in sizes) + " |",
             "|---|---:|---:|" + "---:|---:|---:|" * len(sizes)]
    for v in variants:
        d = deploy[v]
        first = d[str(sizes[0])]
        cells = " | ".join(f"{d[str(s)]['bytes']:,} | {d[str(s)]['bytes_per_param']:.4f} | {d[str(s)]['latency_ms']:.3f}"
                           for s in sizes)
        lines.append(f"| `{v}` | {first['convs']} | {first['params']:,} | {cells} |")
    lines += ["", "## mAP50 per seed, and the paired difference to `leafyolo_u`", "",
              "Final = FP32 after prune + finetune (what the INT8 file is made from); distilled = before pruning.", "",
              "| case | variant | final mAP50 per seed | mean | final: variant - leafyolo_u (95 % t over seeds) | "
              "distilled mAP50 per seed | distilled: variant - leafyolo_u |",
              "|---|---|---|---:|---|---|---|"]
    case_keys = sorted({k.split("/")[0] for k, r in results.items() if r.get("status") == "done"})
    verdict: dict[str, list[tuple[str, str]]] = {v: [] for v in variants if v != BASELINE}
    for ck in case_keys:
        for v in variants:
            p = paired(results, ck, v) if v != BASELINE else None
            runs = [r for k, r in results.items() if k.startswith(ck + "/") and r.get("status") == "done"
                    and r["variant"] == v]
            runs.sort(key=lambda r: r["seed"])
            if not runs:
                continue
            pd = paired(results, ck, v, "distill_map50") if v != BASELINE else None
            maps = " / ".join(f"{r['map50']:.3f}" for r in runs)
            dmaps = " / ".join(f"{r['distill_map50']:.3f}" for r in runs)
            mean = statistics.fmean(r["map50"] for r in runs)
            lines.append(f"| {ck} | `{v}` | {maps} | {mean:.3f} | {_diff(p)} | {dmaps} | {_diff(pd)} |")
            if p is not None:
                verdict[v].append((ck, _call(p, margin)))
    teachers = [r for k, r in results.items() if r.get("status") == "done" and r["variant"] == "teacher"]
    if teachers:
        lines += ["", "Teachers (leafyolo_s, shared by every variant of a case and seed): "
                  + ", ".join(f"{r['case']}@{r['imgsz']} seed {r['seed']} {r['map50']:.3f}" for r in
                              sorted(teachers, key=lambda r: (r["case"], r["imgsz"], r["seed"])))]
    lines += ["", "## Verdict", "",
              f"Kept only if bytes per parameter and latency are lower at every size and the final mAP50 is better or "
              f"equal on every case: equal = the difference's 95 % interval lies above -{margin} mAP50 "
              "(non-inferiority); an interval reaching lower is undecided, not equal.", ""]
    base = deploy[BASELINE]
    for v, calls in verdict.items():
        smaller = all(deploy[v][str(s)]["bytes_per_param"] < base[str(s)]["bytes_per_param"] for s in sizes)
        faster = all(deploy[v][str(s)]["latency_ms"] < base[str(s)]["latency_ms"] for s in sizes)
        accurate = len(calls) == len(case_keys) and all(c in ("better", "equal") for _, c in calls)
        lines.append(f"- `{v}`: bytes per param {'lower' if smaller else 'NOT lower'}, latency "
                     f"{'lower' if faster else 'NOT lower'}, mAP50 " + ", ".join(f"{c} on {ck}" for ck, c in calls)
                     + f" -> {'keep' if smaller and faster and accurate else 'not kept'}")
    return lines


# ---------------------------------------------------------------- command line


def main() -> None:
    from studies.arch_latency import register_candidates as register_latency_candidates

    register_candidates()
    register_latency_candidates()  # issue 26's faster candidates: train them here, e.g. --variants leafyolo_u_s4
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--cases", nargs="+", type=parse_case, required=True)
    t.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    t.add_argument("--variants", nargs="+", default=[BASELINE, *CANDIDATES], choices=sorted(VARIANTS))
    t.add_argument("--params", default="params.yaml")
    t.add_argument("--work", default="runs/arch")
    t.add_argument("--results", default=None, help="results JSON (default WORK/results.json)")
    t.add_argument("--jobs", type=int, default=1, help="runs at a time")
    t.add_argument("--workers", type=int, default=0, help="data-loader workers per run")
    t.add_argument("--threads", type=int, default=1, help="torch threads per run")
    t.add_argument("--budget-s", type=float, default=math.inf, help="stop starting and kill runs after this")
    r = sub.add_parser("report")
    r.add_argument("--results", required=True)
    r.add_argument("--variants", nargs="+", default=[BASELINE, *CANDIDATES], choices=sorted(VARIANTS))
    r.add_argument("--sizes", nargs="+", type=int, default=[128, 192, 256])
    r.add_argument("--nc", type=int, default=5)
    r.add_argument("--sparsity", type=float, default=0.3)
    r.add_argument("--margin", type=float, default=0.01, help="mAP50 a candidate may lose and still count as equal")
    r.add_argument("--command", default="", help="the train command that made --results, quoted in the report")
    r.add_argument("--note", default="", help="where and how the training ran, said in the report")
    r.add_argument("--out", default="studies/results/arch_compare.md")
    o = sub.add_parser("one")
    o.add_argument("job")
    args = parser.parse_args()
    if args.cmd == "one":
        job = json.loads(args.job)
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        res = run_one(job)
        write_json(Path(job["work"]) / "result.json", res)
        return
    if args.cmd == "train":
        if BASELINE not in args.variants:
            parser.error(f"--variants must include the baseline {BASELINE}")
        work = Path(args.work).resolve()
        work.mkdir(parents=True, exist_ok=True)
        results = Path(args.results or work / "results.json").resolve()
        data_yamls = prepare_data(args.cases, args.params, work)
        params = str(Path(args.params).resolve())
        jobs = make_jobs(args.cases, args.seeds, args.variants, work, params, data_yamls, args.workers,
                         teacher=needs_teacher(params))
        schedule(jobs, results, args.jobs, args.budget_s, args.threads)
        return
    from bench.stamp import stamp, write_report

    if not Path(args.results).is_file():
        parser.error(f"--results {args.results} is not a file (the JSON that `train` writes)")
    header = stamp()
    results = json.loads(Path(args.results).read_text())
    deploy = deploy_costs(args.variants, args.sizes, args.nc, args.sparsity)
    lines = ["# Fewer, wider layers: candidate students against `leafyolo_u`", "", header, "",
             "Candidates (`studies/arch_compare.py` CANDIDATES): " + "; ".join(
                 f"`{k}` = widths {s.widths}, Ghost bottlenecks {s.depths}, neck {s.neck_width} x depth "
                 f"{s.neck_depth}, head depth {s.head_depth}" for k, s in CANDIDATES.items())
             + f"; baseline `{BASELINE}` = {VARIANTS[BASELINE]}.", ""]
    devices = sorted({r["device"] for r in results.values() if r.get("status") == "done"})
    if args.command:
        lines += [f"Training (device {', '.join(devices)}): `{args.command}`" + (f" {args.note}" if args.note else ""),
                  ""]
    lines += report(results, deploy, args.variants, args.sizes, args.margin)
    write_report(args.out, lines, {"results": args.results, "margin": args.margin, "deploy": deploy})


if __name__ == "__main__":
    main()
