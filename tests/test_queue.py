"""Concurrent experiments (issue 27 item 5): `python -m bench.queue_runs` queues four sparsities, runs them two at a
time (`dvc queue start -j 2`) in a copy of the `dvc_sweep` project, and compares each with its one-at-a-time run (the
sweep's baseline and experiments for 0.3, 0.4 and 0.5, one run made here for 0.6)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stage_runner import REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("dvc", path=str(Path(sys.executable).parent)) is None,
                       reason="dvc is not installed in this environment"),
]

SPARSITIES = (0.3, 0.4, 0.5, 0.6)


@pytest.fixture(scope="module")
def queued(dvc_sweep, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("queue")
    out = work / "queue_runs.md"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}
    proc = subprocess.run([sys.executable, "-m", "bench.queue_runs", "--params", str(REPO / "tests/tiny_params.yaml"),
                           "--sparsities", *map(str, SPARSITIES), "--jobs", "2", "--project", str(dvc_sweep["project"]),
                           "--work", str(work), "--out", str(out), "--timeout", "900"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    return {"proc": proc, "project": work / "project", "out": out,
            "data": json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else None}


def test_every_queued_run_succeeds_and_equals_its_one_at_a_time_run(queued):
    proc, data = queued["proc"], queued["data"]
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    rows = {r["sparsity"]: r for r in data["rows"]}
    assert sorted(rows) == list(SPARSITIES) and data["succeeded"] == data["matched"] == len(SPARSITIES)
    for v, r in rows.items():
        c = r["comparison"]
        assert r["status"] == "Success" and r["equal"], (v, c)
        assert r["ran"] == data["downstream"] == ["prune", "finetune", "calibrate", "onnx", "web", "tflite",
                                                  "evaluate", "plots", "gate"]  # run again, not from the run cache
        assert c["outputs"] >= 15 and c["same_outputs"] == c["outputs"], c["different_outputs"]
        assert c["metrics"] >= 9 and c["same_metrics"] == c["metrics"], c["metric_differences"]
        assert r["queued"]["params_sparsity"] == r["queued"]["lock_sparsity"] == v and r["queued"]["params_match"]
    assert "one at a time" in rows[0.6]["reference"]["source"]  # the sweep made the others


def test_the_sparsities_give_different_models_so_a_crossed_result_would_show(queued):
    rows = sorted(queued["data"]["rows"], key=lambda r: r["sparsity"])
    params = [r["queued"]["params_after"] for r in rows]
    assert params == sorted(params, reverse=True) and len(set(params)) == len(params)
    assert len({r["queued"]["prune_md5"] for r in rows}) == len(rows) and queued["data"]["distinct_results"]


def test_each_run_had_its_own_workspace_and_left_nothing_behind(queued):
    data, project = queued["data"], queued["project"]
    watch = data["watch"]
    assert watch["max_at_once"] == 2 and data["own_workspaces"]
    assert sorted(w["sparsity"] for w in watch["workspaces"].values()) == list(SPARSITIES)
    assert all("finetune" in w["resume"] for w in watch["workspaces"].values())  # the resume folder, inside it
    assert not watch["in_project"]  # no resume checkpoint or temp file written into the project's own artifacts/
    for r in data["rows"]:
        assert r["workspace"].startswith(str(project / ".dvc/tmp/exps/tmp"))
    assert len({r["workspace"] for r in data["rows"]}) == len(SPARSITIES)
    left = data["leftovers"]
    assert left["temp"] == [] and left["resume_state_files"] == [] and left["resume_unchanged"]
    assert not list((project / ".dvc/tmp/exps").glob("tmp*"))
    assert not [p for p in project.rglob("*.tmp") if ".git" not in p.parts]
    assert not list(project.rglob("last.pt"))


def test_queue_report_is_well_formed(queued):
    text = queued["out"].read_text()
    assert "Command: `python -m bench.queue_runs" in text
    assert "**4 of 4 succeeded, 4 of 4 equal to their one-at-a-time run**" in text
    assert text.count("| `queued-") == len(SPARSITIES)
    restarts = queued["data"]["restarts"]
    assert f"tasks still queued, treeverse/dvc#10562): {len(restarts)} time" in text
    assert all(set(x) == {"after_s", "status", "workers"} for x in restarts)
