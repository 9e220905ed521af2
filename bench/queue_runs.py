"""Concurrent DVC experiments give what the same experiments give one at a time (issue 27 item 5): one
`dvc exp run --queue -S prune.sparsity=<v>` per sparsity, started together by `dvc queue start -j <jobs>`, must each
end with its own results, no resume folder or temp file crossing between the runs. Each queued experiment is compared
with a run of the same sparsity made one at a time: every output's md5 in the two experiments' `dvc.lock`, and the
metrics files apart from their timings (wall seconds, throughput, latency).

    python -m bench.queue_runs [--params params.yaml] [--sparsities 0.3 0.4 0.5 0.6] [--jobs 2] [--work DIR]
                               [--project DIR] [--out bench/results/queue_runs.md]

Every run, queued or one at a time, is `dvc exp run -S prune.sparsity=<v> -f --downstream prune`: prune and every
stage after it are run again (even at the baseline's own sparsity, and never restored from DVC's run cache), data,
teacher and distill come from the baseline commit.

Without `--project`, a scratch project is made (as `bench.pipeline_sweep` makes it: budgets relaxed), `dvc repro`-ed,
and every sparsity is run one at a time, timed, before the queue. With `--project DIR` (a project whose HEAD is a
finished `dvc repro` of the same params, such as the one `bench.pipeline_sweep --work W` leaves in W/project), a copy
of it in `--work` is used and the one-at-a-time runs it holds are reused: its HEAD for its own sparsity and its
experiments named `sparsity-<v>`; only the missing sparsities are run one at a time.

How DVC runs the queue (dvc 3.x, `dvc/repo/experiments/queue/celery.py`, `executor/local.py`): `-j N` starts N
celery workers, each running one task at a time. A task makes a fresh git repository in `.dvc/tmp/exps/tmpXXXXXXXX`,
pushes the experiment's commit into it, checks the DVC-tracked inputs out of the project's DVC cache (shared by all
workers: `cache.dir` points there), runs `dvc exp exec-run` with that folder as the working directory, brings the
result commit back as `refs/exps/...` and deletes the folder. Git-ignored files (`artifacts/.resume/`) are not carried
into it. This script watches `.dvc/tmp/exps/` while the queue runs to see it happen.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench.dvc_project import commit, load_params, make_project, run
from bench.dvc_queue import EXPS, drive_queue, worker_logs
from bench.lock_compare import differences
from bench.pipeline_sweep import ran_stages, relaxed_gate, reuse_project
from bench.stamp import stamp, write_report

TEMP_NAME = re.compile(r"\.tmp(\.|$)|\.old$")  # temp siblings of outputs (pipeline/io/atomic.py, predict.py)


def run_args(v: float) -> list[str]:
    return ["-S", f"prune.sparsity={v:g}", "-f", "--downstream", "prune"]


def git(project: Path, *args: str) -> str:
    return run(["git", *args], project).stdout


def show(project: Path, rev: str, path: str) -> str:
    return git(project, "show", f"{rev}:{path}")


def exp_refs(project: Path) -> dict[str, str]:
    """Experiment name -> its commit, for every experiment of every baseline in the project."""
    refs = {}
    for line in git(project, "for-each-ref", "--format=%(objectname) %(refname)", "refs/exps").splitlines():
        sha, ref = line.split()
        parts = ref.split("/")
        if len(parts) == 5:  # refs/exps/<2 hex>/<38 hex>/<name>; exec/ and celery/ refs are DVC's own
            refs[parts[-1]] = sha
    return refs


def reset(project: Path) -> None:
    """Put the workspace back on HEAD (a workspace `dvc exp run` leaves its results applied)."""
    run(["git", "reset", "-q", "--hard", "HEAD"], project)
    run(["dvc", "checkout", "--force"], project)


def metrics_paths(project: Path) -> set[str]:
    """Every file `dvc.yaml` declares under `metrics:`."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    return {next(iter(m)) if isinstance(m, dict) else m for s in stages.values() for m in s.get("metrics", [])}


def downstream_of(project: Path, stage: str) -> list[str]:
    """`stage` and every stage that depends, directly or not, on an output of it: what `--downstream` runs."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    outs = {s: {next(iter(o)) if isinstance(o, dict) else o for key in ("outs", "metrics", "plots")
                for o in spec.get(key, [])} for s, spec in stages.items()}
    found = [stage]
    for s, spec in stages.items():  # dvc.yaml lists a stage after the stages it depends on
        if s not in found and any(d.startswith(o) for d in spec.get("deps", []) for f in found for o in outs[f]):
            found.append(s)
    return found


def temp_leftovers(project: Path) -> list[str]:
    """Temp files and folders anywhere in the project (git's store left out), and workers' workspaces not removed."""
    found = [str(p.relative_to(project)) for p in project.rglob("*")
             if TEMP_NAME.search(p.name) and ".git" not in p.relative_to(project).parts]
    return sorted(found + [str(p.relative_to(project)) for p in (project / EXPS).glob("tmp*")])


def resume_state(project: Path) -> dict[str, list[str]]:
    """Each resume folder under artifacts/.resume and the files in it."""
    root = project / "artifacts/.resume"
    return {d.name: sorted(p.name for p in d.iterdir()) for d in sorted(root.glob("*"))} if root.is_dir() else {}


class WorkspaceWatch(threading.Thread):
    """Polls `.dvc/tmp/exps/` while the queue runs: each worker's workspace, the sparsity in its params.yaml, the
    resume folders and temp files seen in it, how many workspaces existed at once; and any resume state or temp file
    appearing in the project's own artifacts/ (a run writing outside its workspace)."""

    def __init__(self, project: Path, period: float = 0.5):
        super().__init__(daemon=True)
        self.project, self.period, self.done = project, period, threading.Event()
        self.workspaces: dict[str, dict[str, Any]] = {}
        self.max_at_once = 0
        self.in_project: set[str] = set()

    def run(self) -> None:
        while not self.done.is_set():
            self.poll()
            self.done.wait(self.period)

    def stop(self) -> None:
        self.done.set()
        self.join()

    def poll(self) -> None:
        dirs = [d for d in (self.project / EXPS).glob("tmp*") if d.is_dir()]
        self.max_at_once = max(self.max_at_once, len(dirs))
        for d in dirs:
            seen = self.workspaces.setdefault(d.name, {"sparsity": None, "resume": set(), "temp_files": set()})
            try:  # read again each time: the experiment's own params.yaml replaces the baseline's in the first seconds
                if (d / "params.yaml").is_file():
                    seen["sparsity"] = yaml.safe_load((d / "params.yaml").read_text())["prune"]["sparsity"]
                seen["resume"] |= {p.name for p in (d / "artifacts/.resume").glob("*")}
                seen["temp_files"] |= {str(p.relative_to(d)) for p in (d / "artifacts").rglob("*")
                                       if TEMP_NAME.search(p.name)}
            except (OSError, TypeError, KeyError, yaml.YAMLError):  # the folder is being filled or removed
                continue
        try:
            self.in_project |= {str(p.relative_to(self.project)) for p in (self.project / "artifacts").rglob("*")
                                if TEMP_NAME.search(p.name) or p.name == "last.pt"}
        except OSError:
            pass

    def summary(self) -> dict[str, Any]:
        return {"max_at_once": self.max_at_once, "in_project": sorted(self.in_project),
                "workspaces": {name: {"sparsity": w["sparsity"], "resume": sorted(w["resume"]),
                                      "temp_files": sorted(w["temp_files"])} for name, w in self.workspaces.items()}}


def run_queue(project: Path, names: dict[float, str], jobs: int, timeout_s: float, poll_s: float = 3.0,
              idle_s: float = 20.0, max_restarts: int = 3,
              args_of: Callable[[float], list[str]] = run_args) -> dict[str, Any]:
    """Queue one experiment per sparsity, start `jobs` workers and wait (bench.dvc_queue.drive_queue: restarts and
    timeout there) until every task is done and every worker workspace removed, watching the workspaces."""
    for v, name in names.items():
        run(["dvc", "exp", "run", "--queue", "-n", name, *args_of(v)], project)
    watch = WorkspaceWatch(project)
    watch.start()
    t0 = time.time()
    try:
        status, workers, restarts = drive_queue(project, list(names.values()), jobs, timeout_s, poll_s, idle_s,
                                                max_restarts)
    except BaseException:
        watch.stop()
        raise
    end = time.time()
    for _ in range(120):  # a task reports its end while its workspace is being removed: give it a minute
        if not list((project / EXPS).glob("tmp*")):
            break
        time.sleep(0.5)
    watch.stop()
    logs = {n: run(["dvc", "queue", "logs", n], project).stdout for n in names.values()}
    committed = [int(git(project, "log", "-1", "--format=%ct", sha)) for name, sha in exp_refs(project).items()
                 if name in names.values()]
    return {"status": {n: status.get(n) for n in names.values()}, "wall": end - t0,
            "last_commit_s": max(committed) - t0 if committed else None, "workers": workers, "restarts": restarts,
            "ran": {n: ran_stages(log) for n, log in logs.items()},
            "logs": {n: log[-3000:] for n, log in logs.items() if status.get(n) != "Success"},
            "worker_logs": worker_logs(project) if restarts or any(
                s != "Success" for s in status.values()) else {},
            "watch": watch.summary(), "infofiles": infofiles(project)}


def infofiles(project: Path) -> dict[str, dict[str, Any]]:
    """Experiment name -> where DVC ran it (its executor's location and root folder)."""
    out = {}
    for path in (project / EXPS / "run").glob("*/*.run"):
        info = json.loads(path.read_text())
        out[info.get("name")] = {"location": info.get("location"), "root_dir": info.get("root_dir")}
    return out


def stage_seconds(project: Path, rev: str, paths: set[str], ran: set[str]) -> float:
    """The sum of the `seconds` of the stages in `ran`, read from their metrics files at `rev`."""
    return sum(json.loads(show(project, rev, p)).get("seconds", 0.0) for p in sorted(paths)
               if p.split("/")[1] in ran)


def compare(project: Path, ref: str, exp: str, metrics: set[str]) -> dict[str, Any]:
    """Every output of `exp`'s dvc.lock against `ref`'s: md5 for the outputs, content apart from timings for metrics."""
    def outs(rev: str) -> dict[str, str]:
        lock = yaml.safe_load(show(project, rev, "dvc.lock"))
        return {o["path"]: o.get("md5", "") for s in lock["stages"].values() for o in s.get("outs", [])}

    a, b = outs(ref), outs(exp)
    files = sorted(set(a) | set(b))
    different = [p for p in files if p not in metrics and (p not in a or p not in b or a[p] != b[p])]
    metric_diffs = {}
    for p in (p for p in files if p in metrics):
        if p not in a or p not in b:
            metric_diffs[p] = ["(missing)"]
        elif diffs := differences(json.loads(show(project, ref, p)), json.loads(show(project, exp, p))):
            metric_diffs[p] = [k for k, _ in diffs]
    n_metrics = sum(p in metrics for p in files)
    return {"outputs": len(files) - n_metrics, "same_outputs": len(files) - n_metrics - len(different),
            "different_outputs": different, "metrics": n_metrics, "same_metrics": n_metrics - len(metric_diffs),
            "metric_differences": metric_diffs}


def facts(project: Path, rev: str, v: float, params: dict[str, Any]) -> dict[str, Any]:
    """What an experiment commit says about itself: its params (all but its own sparsity equal to `params`?) and
    what the prune stage recorded."""
    own = yaml.safe_load(show(project, rev, "params.yaml"))
    expected = copy.deepcopy(params)
    expected["prune"]["sparsity"] = v
    lock = yaml.safe_load(show(project, rev, "dvc.lock"))
    prune = json.loads(show(project, rev, "artifacts/prune/metrics.json"))
    return {"rev": rev, "params_sparsity": own["prune"]["sparsity"], "params_match": own == expected,
            "lock_sparsity": lock["stages"]["prune"]["params"]["params.yaml"]["prune"]["sparsity"],
            "params_after": prune["params_after"], "achieved_sparsity": prune["achieved_sparsity"],
            "prune_md5": next(o["md5"] for o in lock["stages"]["prune"]["outs"] if o["path"].endswith("model.pt"))}


def prepare(args: argparse.Namespace, relaxed: dict[str, Any], work: Path) -> tuple[Path, bool]:
    project = work / "project"
    if project.exists():
        raise FileExistsError(f"{project} exists: give another --work")
    if args.project:
        src = Path(args.project)
        if not (src / ".dvc").is_dir():
            raise FileNotFoundError(f"{src}: not a DVC project (no .dvc folder)")
        shutil.copytree(src, project, symlinks=True, ignore=lambda d, names: ["tmp"] if d.endswith(".dvc") else [])
        reuse_project(project, relaxed)
        return project, True
    make_project(project, relaxed)
    run(["dvc", "repro"], project)
    commit(project, f"baseline prune.sparsity={relaxed['prune']['sparsity']}")
    return project, False


def references(project: Path, sparsities: list[float], reused: bool) -> dict[float, dict[str, Any]]:
    """The one-at-a-time run of each sparsity: found in a reused project, else run now (timed)."""
    refs, found = {}, exp_refs(project)
    head = git(project, "rev-parse", "HEAD").strip()
    head_sparsity = load_params(project / "params.yaml")["prune"]["sparsity"]
    for i, v in enumerate(sparsities, 1):
        name = f"sparsity-{v:g}"
        if reused and name in found:
            refs[v] = {"rev": found[name], "source": f"experiment `{name}` of the reused project", "wall": None}
        elif reused and v == head_sparsity:
            refs[v] = {"rev": head, "source": "HEAD of the reused project (its `dvc repro`)", "wall": None}
        else:
            print(f"[queue 2/4] one at a time {i}/{len(sparsities)}: dvc exp run -n {name} {' '.join(run_args(v))}",
                  flush=True)
            t0 = time.time()
            out = run(["dvc", "exp", "run", "-n", name, *run_args(v)], project).stdout
            refs[v] = {"rev": exp_refs(project)[name], "source": "run here, one at a time", "wall": time.time() - t0,
                       "ran": ran_stages(out)}
            reset(project)
    return refs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--sparsities", nargs="+", type=float, default=[0.3, 0.4, 0.5, 0.6])
    parser.add_argument("--jobs", type=int, default=2, help="queue workers at once (`dvc queue start -j`)")
    parser.add_argument("--work", default=None, help="keep the scratch project here (default: a temp folder)")
    parser.add_argument("--project", default=None, help="copy this finished project and reuse its runs (see above)")
    parser.add_argument("--out", default="bench/results/queue_runs.md")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds the queue may take from `dvc queue start` before its workers are killed")
    args = parser.parse_args()
    if args.timeout <= 0 or args.jobs < 1:
        raise ValueError(f"--timeout {args.timeout} / --jobs {args.jobs}: expected a positive number of seconds and "
                         "at least one job")
    if len(set(args.sparsities)) != len(args.sparsities) or len(args.sparsities) < 2:
        raise ValueError(f"--sparsities {args.sparsities}: give at least two different values")
    header = stamp()
    params = load_params(args.params)
    relaxed = copy.deepcopy(params)
    relaxed["gate"] = relaxed_gate(params["gate"])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        print(f"[queue 1/4] project in {work / 'project'}" + (f", copied from {args.project}" if args.project else
                                                                  ", cold dvc repro"), flush=True)
        project, reused = prepare(args, relaxed, work)
        refs = references(project, args.sparsities, reused)
        resume_before = resume_state(project)
        names = {v: f"queued-{v:g}" for v in args.sparsities}
        print(f"[queue 3/4] {len(names)} experiments queued, dvc queue start -j {args.jobs}", flush=True)
        queue = run_queue(project, names, args.jobs, args.timeout)
        print(f"  {queue['wall']:.0f} s; {queue['status']}", flush=True)
        print("[queue 4/4] comparing each queued experiment with its one-at-a-time run", flush=True)
        result = summarise(project, args, relaxed, refs, names, queue, resume_before)
    write_report(args.out, report_lines(header, args, result), result)
    if not result["all_ok"]:
        sys.exit(f"concurrent experiments differ from their one-at-a-time runs or failed: see {args.out}")


def summarise(project: Path, args: argparse.Namespace, params: dict[str, Any], refs: dict[float, dict[str, Any]],
              names: dict[float, str], queue: dict[str, Any], resume_before: dict[str, list[str]]) -> dict[str, Any]:
    metrics, found, downstream = metrics_paths(project), exp_refs(project), downstream_of(project, "prune")
    rerun = {"prune", "finetune", "calibrate", "onnx", "web", "tflite", "evaluate"}  # stages with a `seconds`
    by_workspace = {w["sparsity"]: name for name, w in queue["watch"]["workspaces"].items()}
    rows = []
    for v, name in names.items():
        ref = refs[v]
        row: dict[str, Any] = {"sparsity": v, "name": name, "status": queue["status"][name],
                               "reference": {**ref, **facts(project, ref["rev"], v, params)},
                               "ran": queue["ran"][name],
                               "workspace": queue["infofiles"].get(name, {}).get("root_dir"),
                               "workspace_seen": by_workspace.get(v)}
        if name in found and row["status"] == "Success":
            row["queued"] = facts(project, found[name], v, params)
            row["comparison"] = compare(project, ref["rev"], found[name], metrics)
            row["stage_seconds"] = {"queued": stage_seconds(project, found[name], metrics, rerun),
                                    "reference": stage_seconds(project, ref["rev"], metrics, rerun)}
            c, q = row["comparison"], row["queued"]
            row["equal"] = (not c["different_outputs"] and not c["metric_differences"]
                            and q["params_match"] and q["params_sparsity"] == q["lock_sparsity"] == v
                            and set(row["ran"]) == set(downstream))
        else:
            row["equal"] = False
        rows.append(row)
    distinct = len({r["reference"]["params_after"] for r in rows}) == len(rows) and \
        len({r["reference"]["prune_md5"] for r in rows}) == len(rows)
    leftovers = {"temp": temp_leftovers(project), "resume_before": resume_before, "resume_after": resume_state(project)}
    leftovers["resume_unchanged"] = leftovers["resume_before"] == leftovers["resume_after"]
    leftovers["resume_state_files"] = sorted(f"{d}/{f}" for d, fs in leftovers["resume_after"].items() for f in fs)
    workspaces = queue["watch"]["workspaces"]
    own = (len(workspaces) == len(rows) and sorted(w["sparsity"] for w in workspaces.values()) == sorted(names)
           and all(info["location"] == "dvc-task" and info["root_dir"].startswith(str(project / EXPS))
                   for n, info in queue["infofiles"].items() if n in names.values()))
    one_at_a_time = [r["reference"]["wall"] for r in rows if r["reference"]["wall"] is not None]
    all_ok = (all(r["equal"] for r in rows) and distinct and not leftovers["temp"] and leftovers["resume_unchanged"]
              and not leftovers["resume_state_files"] and not queue["watch"]["in_project"] and own)
    scale = (f"{params['data']['n_train']} training images of {params['data']['imgsz']} px, epochs teacher "
             f"{params['teacher']['train']['epochs']}, distill {params['distill']['train']['epochs']}, finetune "
             f"{params['finetune']['train']['epochs']}")
    return {"sparsities": args.sparsities, "jobs": args.jobs, "scale": scale, "downstream": downstream,
            "reused_project": bool(args.project), "rows": rows,
            "queued_wall": queue["wall"], "queued_last_commit_s": queue["last_commit_s"],
            "one_at_a_time_wall": sum(one_at_a_time) if one_at_a_time else None,
            "one_at_a_time_runs": len(one_at_a_time), "workers_end": queue["workers"], "logs": queue["logs"],
            "restarts": queue["restarts"], "worker_logs": queue["worker_logs"],
            "watch": queue["watch"], "own_workspaces": own, "distinct_results": distinct, "leftovers": leftovers,
            "matched": sum(r["equal"] for r in rows), "succeeded": sum(r["status"] == "Success" for r in rows),
            "all_ok": all_ok}


def report_lines(header: str, args: argparse.Namespace, r: dict[str, Any]) -> list[str]:
    n, watch, left = len(r["rows"]), r["watch"], r["leftovers"]
    lines = ["# Concurrent experiments (`dvc queue start -j`) against one at a time", "", header, "",
             f"{n} experiments `dvc exp run --queue -S prune.sparsity=<v> -f --downstream prune`, started by "
             f"`dvc queue start -j {r['jobs']}`: **{r['succeeded']} of {n} succeeded, {r['matched']} of {n} equal "
             f"to their one-at-a-time run** (every output's md5 in `dvc.lock`, metrics files apart from timings, the "
             f"experiment's params.yaml its own sparsity and otherwise the baseline's). Params `{args.params}`: "
             f"{r['scale']}; the property (the same results) is measured, not accuracy.", "",
             "| prune.sparsity | queued experiment | status | stages it ran | one-at-a-time run | params after pruning | "
             "outputs same md5 | metrics same but timings | stage seconds queued / alone |",
             "|---:|---|---|---:|---|---:|---:|---:|---:|"]
    for row in r["rows"]:
        c, s = row.get("comparison"), row.get("stage_seconds")
        lines.append(f"| {row['sparsity']:g} | `{row['name']}` | {row['status']} | {len(row['ran'])} | "
                     f"{row['reference']['source']} | "
                     f"{row['reference']['params_after']:,} | "
                     + (f"{c['same_outputs']}/{c['outputs']} | {c['same_metrics']}/{c['metrics']} | "
                        f"{s['queued']:.0f} / {s['reference']:.0f} |" if c else "- | - | - |"))
    for row in r["rows"]:
        c = row.get("comparison") or {}
        if c.get("different_outputs") or c.get("metric_differences"):
            lines.append(f"\n`{row['name']}` differs: outputs {c['different_outputs']}, metrics "
                         f"{ {p: k[:6] for p, k in c['metric_differences'].items()} }")
    full = all(set(row["ran"]) == set(r["downstream"]) for row in r["rows"])
    lines += ["", (f"Every queued run ran {', '.join(r['downstream'])} (its `dvc queue logs`): nothing came from "
                   "DVC's run cache." if full else f"NOT every queued run ran all of {', '.join(r['downstream'])}.")
              + (" So did each one-at-a-time run made here." if all(
                  set(row["reference"].get("ran", r["downstream"])) == set(r["downstream"]) for row in r["rows"])
                 else " NOT every one-at-a-time run made here ran them all."),
              "", f"A crossed result would show: the sparsities' pruned parameter counts and prune/model.pt md5s are "
                  f"{'all different' if r['distinct_results'] else 'NOT all different'}.", "",
              "## Where the runs happen", "",
              f"Watched every 0.5 s: {len(watch['workspaces'])} worker workspaces appeared under `.dvc/tmp/exps/`, at "
              f"most {watch['max_at_once']} at once, one per experiment "
              f"({'each holding its own sparsity in params.yaml' if r['own_workspaces'] else 'NOT one per sparsity'}). "
              "Resume folders seen inside them: "
              + "; ".join(f"{w['sparsity']:g}: {', '.join(w['resume']) or 'none'}"
                          for w in sorted(watch["workspaces"].values(), key=lambda w: w["sparsity"] or 0))
              + f". Temp files (each lives for a moment) caught by the poll inside them: "
              f"{sum(len(w['temp_files']) for w in watch['workspaces'].values())}; in the project's own artifacts/ "
              f"during the queue: {len(watch['in_project'])} (temp files or resume checkpoints).", "",
              f"Afterwards: temp files or worker workspaces left in the project: {len(left['temp'])}"
              + (f" ({', '.join(left['temp'][:6])})" if left["temp"] else "") + "; resume checkpoints: "
              f"{len(left['resume_state_files'])}; `artifacts/.resume/` "
              f"{'as before the queue' if left['resume_unchanged'] else 'CHANGED by the queue'} "
              f"({', '.join(sorted(left['resume_after'])) or 'absent'}, "
              f"{'empty' if not left['resume_state_files'] else 'not empty'}: the one-at-a-time runs' own, in the "
              "project's workspace).", "",
              "## Wall time", ""]
    queued = (f"the last of the {n} results committed {r['queued_last_commit_s'] or float('nan'):.0f} s after `dvc queue start`, "
              f"`dvc queue status` (polled every 3 s) showed all done after {r['queued_wall']:.0f} s.")
    if r["one_at_a_time_wall"] is not None:
        lines.append(f"Queued, {r['jobs']} at once: {queued} One at a time: {r['one_at_a_time_wall']:.0f} s for the "
                     f"{r['one_at_a_time_runs']} run{'s' if r['one_at_a_time_runs'] > 1 else ''} made here"
                     + (f" ({r['one_at_a_time_wall'] / r['queued_last_commit_s']:.2f}x the queued time to the last "
                        "result)" if r["one_at_a_time_runs"] == n and r["queued_last_commit_s"] else
                        "; the others were reused" if r["one_at_a_time_runs"] < n else "") + ".")
    else:
        lines.append(f"Queued, {r['jobs']} at once: {queued} The one-at-a-time runs were all reused, not timed here.")
    lines += ["", f"Queue workers started again (`dvc queue start` after DVC's workers had exited with tasks still queued, "
                  f"treeverse/dvc#10562): {len(r['restarts'])} time{'' if len(r['restarts']) == 1 else 's'}"
                  + "".join(f"; after {x['after_s']} s ({x['workers']})" for x in r["restarts"]) + "."]
    lines += ["", "Stage seconds in the table: each stage's own `seconds` (prune to evaluate, and web) summed, for the "
                  "queued run and for its run alone: what sharing the cores cost each run.", ""]
    for name, log in [*r["logs"].items(), *r["worker_logs"].items()]:
        lines += [f"Log of `{name}`:", "", "```", log.strip(), "```", ""]
    return lines


if __name__ == "__main__":
    main()
