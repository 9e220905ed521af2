"""bench.queue_runs' queue loop on a one-stage DVC project (seconds a task, no pipeline): workers that exit with
tasks still queued are started again and every task ends; a queue past its --timeout is stopped with an error naming
the tasks, and no worker or stage command is left running (the failure that once held CI for 25 minutes with no word)."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest
import yaml

from bench.dvc_project import run
from bench.dvc_queue import QueueError, project_processes, worker_processes
from bench.queue_runs import run_queue

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("dvc", path=str(Path(sys.executable).parent)) is None,
                       reason="dvc is not installed in this environment"),
]


def x_args(v: float) -> list[str]:
    return ["-S", f"x={v:g}"]


def project(root: Path, sleep_s: float) -> Path:
    """A git + DVC project with one stage that writes params.yaml's `x` (sleeping `sleep_s` first, but for the
    baseline's x = 1), reproduced and committed."""
    root.mkdir()
    run(["git", "init", "-q"], root)
    run(["git", "config", "user.email", "t@example.invalid"], root)
    run(["git", "config", "user.name", "t"], root)
    run(["dvc", "init", "-q"], root)
    (root / "params.yaml").write_text("x: 1\n")
    cmd = (f"python -c \"import time, yaml; x = yaml.safe_load(open('params.yaml'))['x']; "
           f"time.sleep({sleep_s} * (x != 1)); open('out.txt', 'w').write(str(x))\"")
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"s": {"cmd": cmd, "params": ["x"], "outs": ["out.txt"]}}}))
    run(["dvc", "repro", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "base"], root)
    return root


def test_workers_that_exit_with_tasks_queued_are_started_again(tmp_path, monkeypatch):
    """The first `dvc queue start` leaves no worker (as when DVC's workers exit with tasks still queued,
    treeverse/dvc#10562): the loop sees tasks queued with no worker for `idle_s`, starts the workers again, and every
    task ends. (Stopping a live worker with `dvc queue stop` makes the same state, but racily: a worker stopped while
    taking its next task can leave that task 'Running' with no process, so the test does not do that.)"""
    import bench.dvc_queue as dq

    root = project(tmp_path / "p", sleep_s=1)
    names = {2.0: "e2", 3.0: "e3", 4.0: "e4"}
    real_start, calls = dq.start_workers, []

    def start_none_the_first_time(project_dir: Path, jobs: int) -> None:
        calls.append(jobs)
        if len(calls) > 1:
            real_start(project_dir, jobs)

    monkeypatch.setattr(dq, "start_workers", start_none_the_first_time)
    result = run_queue(root, names, jobs=1, timeout_s=300, poll_s=1, idle_s=3, args_of=x_args)
    assert result["status"] == {"e2": "Success", "e3": "Success", "e4": "Success"}
    assert len(calls) == 2 and len(result["restarts"]) == 1
    assert set(result["restarts"][0]["status"].values()) == {"Queued"}
    deadline = time.time() + 60  # an idle worker exits by itself once the queue is empty
    while worker_processes(root) and time.time() < deadline:
        time.sleep(1)
    assert not worker_processes(root)


def test_a_queue_past_its_timeout_is_stopped_with_an_error_naming_its_tasks(tmp_path):
    root = project(tmp_path / "p", sleep_s=120)
    t0 = time.time()
    with pytest.raises(QueueError, match=r"did not finish in 10 s \(--timeout\).*'e2': '(Running|Queued)'"):
        run_queue(root, {2.0: "e2", 3.0: "e3"}, jobs=2, timeout_s=10, poll_s=1, args_of=x_args)
    assert time.time() - t0 < 100  # not the 120 s the stage would sleep
    assert not worker_processes(root) and not project_processes(root)  # the stage commands too, not only DVC's
    assert not list((root / ".dvc/tmp/exps").glob("tmp*/out.txt"))  # no task finished its stage
