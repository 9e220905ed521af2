"""Driving a DVC experiment queue from a script without hanging on it: `dvc queue start` with its output in a file
(not a pipe its workers inherit), the queue polled with progress printed, workers that exit with tasks still queued
started again, and past a timeout every worker killed and an error that names each task's state and quotes the
workers' own logs. Used by bench.queue_runs and bench.pipeline_sweep."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.dvc_project import dvc_env, run

EXPS = Path(".dvc/tmp/exps")


def queue_status(project: Path) -> tuple[dict[str, str], str]:
    """(experiment name -> Queued/Running/Success/Failed, the worker line) from `dvc queue status`."""
    out = run(["dvc", "queue", "status"], project).stdout
    rows = {parts[1]: parts[-1] for parts in map(str.split, out.splitlines()) if len(parts) >= 4 and parts[0] != "Task"}
    return rows, next((line for line in out.splitlines() if line.startswith("Worker status")), "")


class QueueError(RuntimeError):
    """The queue did not finish: its status, DVC's worker logs and what was done about it are in the message."""


def worker_processes(project: Path) -> list[psutil.Process]:
    """The `dvc exp queue-worker` processes serving this project (started in it by `dvc queue start`)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmd, cwd = proc.info["cmdline"] or [], proc.info["cwd"]
        if "queue-worker" in cmd and cwd and Path(cwd).resolve() == project.resolve():
            found.append(proc)
    return found


def worker_logs(project: Path, tail: int = 2000) -> dict[str, str]:
    """The end of each celery worker's own log (`.dvc/tmp/exps/celery/**/*.out`): where a worker that died says why."""
    return {str(p.relative_to(project)): p.read_text(errors="replace")[-tail:]
            for p in sorted((project / EXPS / "celery").rglob("*.out"))}


def project_processes(project: Path) -> list[psutil.Process]:
    """Every process working in the project or in one of its experiment workspaces (`.dvc/tmp/exps/tmp*`): the
    queue's workers, their `dvc exp exec-run` and the stage commands those start, which live on, reparented, when
    DVC kills only the task. This process and its parents are left out."""
    mine = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    root, exps = project.resolve(), (project / EXPS).resolve()
    found = []
    for proc in psutil.process_iter(["cwd"]):
        cwd = proc.info["cwd"]
        if proc.pid not in mine and cwd and (Path(cwd) == root or Path(cwd).is_relative_to(exps)):
            found.append(proc)
    return found


def stop_queue(project: Path) -> list[int]:
    """`dvc queue stop --kill`, then kill every process still working in the project (project_processes) with its
    children; the pids killed."""
    subprocess.run(["dvc", "queue", "stop", "--kill"], cwd=project, env=dvc_env(project), stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    killed: list[psutil.Process] = []
    for proc in project_processes(project):
        try:
            for p in [*proc.children(recursive=True), proc]:
                p.kill()
                killed.append(p)
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(killed, timeout=10)
    return [p.pid for p in killed]


def start_workers(project: Path, jobs: int) -> str:
    """`dvc queue start -j <jobs>`, its output through a file: the workers it spawns inherit its stdout and stderr,
    and a pipe there would keep `subprocess.run` waiting until the last worker exits (the queue's end, or never)."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.run(["dvc", "queue", "start", "-j", str(jobs)], cwd=project, env=dvc_env(project),
                              stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=300)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise QueueError(f"`dvc queue start -j {jobs}` failed in {project} (exit {proc.returncode}):\n{text[-3000:]}")
    return text


def drive_queue(project: Path, names: list[str], jobs: int, timeout_s: float, poll_s: float = 3.0,
                idle_s: float = 20.0, max_restarts: int = 3) -> tuple[dict[str, str], str, list[dict[str, Any]]]:
    """Start `jobs` workers and wait until none of the tasks `names` is queued or running; (each task's end state,
    the worker line, the restarts). DVC's workers can exit with tasks still queued (treeverse/dvc#10562, #10427):
    when tasks wait with no worker process alive for `idle_s`, `dvc queue start` is run again, as a user would (at
    most `max_restarts` times, each recorded). Past `timeout_s` the workers are killed and QueueError names each
    task's state, the restarts and the workers' own logs. On any error the workers are stopped, never left running."""
    t0 = time.time()
    restarts: list[dict[str, Any]] = []
    stopped = False
    try:
        start_workers(project, jobs)
        shown, idle_since = None, None
        while True:
            time.sleep(poll_s)
            status, workers = queue_status(project)
            state = {n: status.get(n) for n in names}
            if state != shown:
                print(f"  {time.time() - t0:4.0f} s: " + ", ".join(f"{n} {s}" for n, s in state.items()), flush=True)
                shown = state
            if not any(s in (None, "Queued", "Running") for s in state.values()):
                return state, workers, restarts
            waiting = "Queued" in state.values() and "Running" not in state.values()
            idle_since = (idle_since or time.time()) if waiting and not worker_processes(project) else None
            if idle_since and time.time() - idle_since > idle_s and len(restarts) < max_restarts:
                restarts.append({"after_s": round(time.time() - t0), "status": dict(state), "workers": workers})
                print(f"  no queue worker alive with tasks queued: dvc queue start -j {jobs} again", flush=True)
                start_workers(project, jobs)
                idle_since = None
            if time.time() - t0 > timeout_s:
                logs = worker_logs(project)
                killed = stop_queue(project)
                stopped = True
                raise QueueError(
                    f"the queue in {project} did not finish in {timeout_s:.0f} s (--timeout): {state}; {workers}; "
                    f"restarted {len(restarts)} times; killed worker pids {killed}; worker logs:\n"
                    + "\n".join(f"--- {p}\n{text}" for p, text in logs.items()))
    except BaseException:
        if not stopped:
            stop_queue(project)
        raise
