"""Killed runs resume to the same bytes (issue 27 item 1): `dvc repro` is killed with SIGKILL at chosen points inside
every stage that writes something, again and again, and each time run again; in the end it must complete with every
output byte-identical to an uninterrupted run's (metrics files: equal but for timings), no partial file ever visible
under artifacts/, no temporary file left, and `dvc status` clean.

    python -m bench.faults [--params tests/tiny_params.yaml] [--epochs 3] [--max-writes 4] [--work DIR]
                           [--out bench/results/faults.md]

How: two scratch DVC projects of the same params (`bench.dvc_project`). The reference runs `dvc repro` once with
`LEAFYOLO_FAULT_TRACE` set, which lists every fault point it passes (`pipeline/common/faults.py`): `step` after each
optimizer step (its global step number), `write` halfway through each atomic file write (the file's name), `dir`
with each finished folder not yet renamed into place. From that list the kills are chosen, stage by stage in the
order the points are reached: one mid-epoch step per epoch, the first write of each file name (the first resume
state, the model, the metrics ...) and each folder. The faulty project then runs `dvc repro` once per kill with
`LEAFYOLO_FAULT=<stage>:<point>:<name>` (the first arrival at that point with that step or file name kills the
process group: dvc and the stage). After every kill each file under artifacts/ must be a temporary sibling
(`.<name>.<pid>.*.tmp`), the trainer's resume state, a dvclive log whose rows are a first part of the reference's,
or equal to the reference's file. The training stages resume from their last epoch's state, so their outputs test
that a resumed run equals an uninterrupted one. `--epochs` (default 3) sets every training stage's epochs, so that
there is a resume state to continue from.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.dvc_project import dvc_env, load_params, make_project, run
from bench.lock_compare import compare, differences
from bench.pipeline_sweep import relaxed_gate
from bench.stamp import stamp, write_report
from pipeline.common.faults import FAULT_ENV, TRACE_ENV

TRAINING = ("teacher", "distill", "finetune")
TEMP = re.compile(r"^\..+\.\d+\..+\.(tmp|old)$")  # pipeline/io/atomic.py's temporary siblings
MAX_WRITE_KILLS = 4  # per stage (default of --max-writes): the stages that write many files get their first few


@dataclass(frozen=True)
class Arrival:
    stage: str
    point: str
    name: str  # the step number or the file or folder name: what a kill is aimed at

    @property
    def spec(self) -> str:
        return f"{self.stage}:{self.point}:{self.name}"


def fault_params(base: dict[str, Any], epochs: int) -> dict[str, Any]:
    """`base` with every training stage at `epochs` epochs, and the gate relaxed (tiny runs miss real budgets)."""
    params = copy.deepcopy(base)
    for stage in TRAINING:
        params[stage].setdefault("train", {})["epochs"] = epochs
    params["gate"] = relaxed_gate(params["gate"])
    return params


def read_trace(path: Path) -> list[Arrival]:
    """The fault points a run passed, in order, as `pipeline/common/faults.py` traced them."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        stage, point, _n, detail = (line.split(" ", 3) + [""])[:4]
        if stage == "-":
            continue
        out.append(Arrival(stage, point, detail))
    return out


def choose_kills(trace: list[Arrival], steps_per_epoch: dict[str, int],
                 max_writes: int = MAX_WRITE_KILLS) -> list[Arrival]:
    """Kill points, stage by stage in the order they were reached: a step in the middle of each epoch, the first
    arrival of each distinct file (at most `max_writes` a stage) and of each folder."""
    chosen: list[Arrival] = []
    seen: set[Arrival] = set()
    writes: dict[str, int] = {}
    for a in trace:
        if a in seen:
            continue
        seen.add(a)
        if a.point == "step":
            spe = steps_per_epoch.get(a.stage, 0)
            if spe and int(a.name) % spe == spe // 2:
                chosen.append(a)
        elif a.point == "write":
            if writes.get(a.stage, 0) < max_writes:
                writes[a.stage] = writes.get(a.stage, 0) + 1
                chosen.append(a)
        elif a.point == "dir":
            chosen.append(a)
    return chosen


def steps_per_epoch(trace: list[Arrival], params: dict[str, Any]) -> dict[str, int]:
    """Optimizer steps per epoch of each training stage, from its step count in the trace and its epochs."""
    out = {}
    for stage in TRAINING:
        steps = {a.name for a in trace if a.stage == stage and a.point == "step"}
        epochs = params[stage]["train"]["epochs"]
        if steps and epochs:
            out[stage] = len(steps) // epochs
    return out


def repro(project: Path, env_extra: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """`dvc repro` in its own session (a fault point kills its whole process group, nothing outside it)."""
    return subprocess.run(["dvc", "repro"], cwd=project, env={**dvc_env(project), **env_extra}, capture_output=True,
                          text=True, timeout=timeout, start_new_session=True)


def tsv_rows(path: Path) -> list[str]:
    return path.read_text().splitlines()


def visible_problems(project: Path, reference: Path) -> tuple[list[str], int]:
    """(files under artifacts/ that are neither complete nor in-progress logs, temporary siblings counted)."""
    problems, temps = [], 0
    root = project / "artifacts"
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(project)
        if any(TEMP.match(part) for part in rel.parts):
            temps += 1
            continue
        if rel.parts[:2] == ("artifacts", ".resume"):
            continue  # the trainer's resume state: written atomically, read back with its fingerprint checked
        ref = reference / rel
        if "live" in rel.parts:  # dvclive's log of a stage in progress: complete rows, the reference's first ones
            if not ref.is_file():
                problems.append(f"{rel}: a log file the uninterrupted run does not have")
            elif path.suffix == ".tsv":
                got, want = tsv_rows(path), tsv_rows(ref)
                if got != want[:len(got)]:
                    problems.append(f"{rel}: {len(got)} rows, not the first rows of the uninterrupted run's log")
            elif path.suffix == ".json":
                try:
                    json.loads(path.read_text())
                except ValueError as e:
                    problems.append(f"{rel}: not complete JSON ({e})")
            continue
        if not ref.is_file():
            problems.append(f"{rel}: a file the uninterrupted run does not have")
        elif path.read_bytes() != ref.read_bytes():
            if path.suffix == ".json":
                try:
                    diffs = differences(json.loads(ref.read_text()), json.loads(path.read_text()))
                except ValueError as e:
                    problems.append(f"{rel}: not complete JSON ({e})")
                    continue
                if diffs:
                    problems.append(f"{rel}: differs from the uninterrupted run's in {[k for k, _ in diffs][:4]}")
            else:
                problems.append(f"{rel}: differs from the uninterrupted run's file ({path.stat().st_size} bytes "
                                f"against {ref.stat().st_size})")
    return problems, temps


def leftovers(project: Path) -> list[str]:
    """Temporary siblings and resume states still under artifacts/ after a finished run."""
    root = project / "artifacts"
    temps = [str(p.relative_to(project)) for p in root.rglob("*") if TEMP.match(p.name)]
    resume = [str(p.relative_to(project)) for p in (root / ".resume").rglob("*") if p.is_file()] \
        if (root / ".resume").is_dir() else []
    return temps + resume


def run_faults(params_path: Path, epochs: int, work: Path, max_writes: int = MAX_WRITE_KILLS,
               timeout: float = 1800) -> dict[str, Any]:
    params = fault_params(load_params(params_path), epochs)
    reference, faulty = work / "reference", work / "faulty"
    make_project(reference, params)
    trace_file = work / "reference_trace.txt"
    t0 = time.perf_counter()
    proc = repro(reference, {TRACE_ENV: str(trace_file)}, timeout)
    reference_s = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"the uninterrupted `dvc repro` failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    trace = read_trace(trace_file)
    kills = choose_kills(trace, steps_per_epoch(trace, params), max_writes)
    make_project(faulty, params)
    rows = []
    t0 = time.perf_counter()
    for i, kill in enumerate(kills, 1):
        run_trace = work / f"kill_{i:02d}_trace.txt"
        proc = repro(faulty, {FAULT_ENV: kill.spec, TRACE_ENV: str(run_trace)}, timeout)
        passed = read_trace(run_trace)
        killed = proc.returncode == -signal.SIGKILL and bool(passed) and passed[-1] == kill
        problems, temps = visible_problems(faulty, reference)
        rows.append({"kill": i, "stage": kill.stage, "point": kill.point, "at": kill.name, "killed": killed,
                     "exit": proc.returncode, "temp_files": temps, "problems": problems})
        print(f"[faults {i}/{len(kills)}] {kill.spec}: {'killed' if killed else 'NOT KILLED'} "
              f"(exit {proc.returncode}), {temps} temporary files, {len(problems)} problems", flush=True)
        if not killed:
            rows[-1]["output"] = (proc.stdout[-1500:] + proc.stderr[-1500:])
    proc = repro(faulty, {}, timeout)
    faulty_s = time.perf_counter() - t0
    final_ok = proc.returncode == 0
    outputs = compare(reference, faulty) if final_ok else []
    status = run(["dvc", "status"], faulty).stdout if final_ok else proc.stdout[-2000:] + proc.stderr[-2000:]
    return {"params": str(params_path), "epochs": epochs, "kills": rows, "final_exit": proc.returncode,
            "outputs": outputs, "leftovers": leftovers(faulty), "dvc_status": status.strip(),
            "status_clean": final_ok and "up to date" in status, "reference_seconds": round(reference_s, 1),
            "faulty_seconds": round(faulty_s, 1), "fault_points_passed": len(trace),
            "trace_counts": {f"{a.stage}:{a.point}": sum(1 for b in trace if (b.stage, b.point) == (a.stage, a.point))
                             for a in trace}}


def verdict(result: dict[str, Any]) -> list[str]:
    """What failed, in words; empty when every kill was survived."""
    bad = []
    for r in result["kills"]:
        if not r["killed"]:
            bad.append(f"kill {r['kill']} ({r['stage']}:{r['point']}:{r['at']}) never happened (exit {r['exit']})")
        bad += [f"after kill {r['kill']}: {p}" for p in r["problems"]]
    if result["final_exit"] != 0:
        bad.append(f"the last `dvc repro` failed (exit {result['final_exit']}): {result['dvc_status'][-500:]}")
    bad += [f"{o['path']}: {o['verdict']}" for o in result["outputs"] if o["verdict"] == "DIFFERENT"]
    bad += [f"left behind: {p}" for p in result["leftovers"]]
    if result["final_exit"] == 0 and not result["status_clean"]:
        bad.append(f"`dvc status` is not clean: {result['dvc_status'][:500]}")
    return bad


def report(result: dict[str, Any]) -> list[str]:
    kills, outputs = result["kills"], result["outputs"]
    by_stage: dict[str, list[dict[str, Any]]] = {}
    for r in kills:
        by_stage.setdefault(r["stage"], []).append(r)
    same = sum(o["verdict"] == "same bytes" for o in outputs)
    timings = sum(o["verdict"] == "same but timings" for o in outputs)
    bad = verdict(result)
    lines = ["# Killed runs resume to the same bytes", "", stamp(), "",
             f"Params: `{result['params']}` with {result['epochs']} epochs per training stage, gate relaxed. "
             f"`dvc repro` was killed with SIGKILL {sum(r['killed'] for r in kills)} times ({len(kills)} aimed), "
             f"each time run again; the last run completed (exit {result['final_exit']}). Against an uninterrupted "
             f"run: {same} outputs byte-identical, {timings} metrics files equal but for timings, "
             f"{sum(o['verdict'] == 'DIFFERENT' for o in outputs)} different. Files under artifacts/ that were "
             f"partial or wrong after a kill: {sum(len(r['problems']) for r in kills)}. Left behind at the end: "
             f"{len(result['leftovers'])}. `dvc status` clean: {'yes' if result['status_clean'] else 'NO'}. "
             f"Uninterrupted run {result['reference_seconds']:.0f} s; the killed runs and the last one "
             f"{result['faulty_seconds']:.0f} s.", "",
             "**Verdict: " + ("every kill survived**" if not bad else "FAILED**: " + "; ".join(bad[:8])), "",
             "| stage | kills | where (point: step number or file) | temporary files seen after the kill |",
             "|---|---|---|---|"]
    for stage, rs in by_stage.items():
        where = ", ".join(f"{r['point']}: {r['at']}" + ("" if r["killed"] else " (NOT KILLED)") for r in rs)
        lines.append(f"| {stage} | {sum(r['killed'] for r in rs)} | {where} | {sum(r['temp_files'] for r in rs)} |")
    lines += ["", "A `write` kill stops a process halfway through a temporary file (`.<name>.<pid>.*.tmp`); the "
              "stage's next write of that file removes it. A `step` kill in a training stage stops it mid-epoch; "
              "the run again resumes from the last finished epoch's state. A `dir` kill stops with the finished "
              "folder not yet renamed into place."]
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("tests/tiny_params.yaml"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-writes", type=int, default=MAX_WRITE_KILLS, help="write kills per stage at most")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--out", default="bench/results/faults.md")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2, so a killed training stage has a resume state to continue from")
    if not args.params.is_file():
        parser.error(f"--params {args.params}: no such file")
    work = args.work or Path(tempfile.mkdtemp(prefix="leafyolo_faults_"))
    result = run_faults(args.params.resolve(), args.epochs, work.resolve(), args.max_writes)
    write_report(args.out, report(result), {**result, "problems": verdict(result)})
    return result


if __name__ == "__main__":
    main()
