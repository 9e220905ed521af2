"""`dvc repro`, `dvc exp run -S prune.sparsity=0.4` and a queued sweep (`dvc exp run --queue` + `dvc queue start`)
on a tiny params set in a scratch git repo, through `bench.pipeline_sweep`: the experiment re-runs `prune` and what
follows while data, teacher and distill come from the DVC cache, and `dvc exp show` holds every sparsity."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.dvc_project import exp_show, run
from tests.stage_runner import REPO

pytestmark = [
    pytest.mark.skipif(shutil.which("dvc", path=str(Path(sys.executable).parent)) is None,
                       reason="dvc is not installed in this environment"),
]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("sweep")
    out = work / "report" / "sweep.md"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}
    proc = subprocess.run([sys.executable, "-m", "bench.pipeline_sweep", "--params", str(REPO / "tests/tiny_params.yaml"),
                           "--sparsities", "0.3", "0.4", "0.5", "--work", str(work), "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return {"project": work / "project", "out": out, "data": json.loads(out.with_suffix(".json").read_text())}


def test_repro_builds_the_chain_and_a_second_repro_does_nothing(sweep):
    project = sweep["project"]
    assert (project / "artifacts/tflite/model_int8.tflite").is_file()
    assert json.loads((project / "artifacts/gate/gate.json").read_text())["passed"] is True  # relaxed budgets
    assert "up to date" in run(["dvc", "status"], project).stdout


def test_experiment_reruns_only_prune_and_later_stages(sweep):
    incr = sweep["data"]["incremental"]
    assert incr["ran"] == ["prune", "finetune", "calibrate", "onnx", "tflite", "evaluate"]
    assert set(incr["seconds"]) == set(incr["ran"]) and all(v > 0 for v in incr["seconds"].values())
    cold = sweep["data"]["cold"]
    assert set(cold["seconds"]) >= {"data", "teacher", "distill", "prune", "tflite", "evaluate"}
    assert cold["wall"] >= sum(cold["seconds"].values()) * 0.9


def test_exp_show_holds_every_sparsity_with_size_and_map(sweep):
    rows = exp_show(sweep["project"])
    by_sparsity = {r["params"]["prune.sparsity"]: r for r in rows}
    assert set(by_sparsity) == {0.3, 0.4, 0.5}
    sizes = {}
    for s, r in by_sparsity.items():
        prune = r["metrics"]["artifacts/prune/metrics.json"]
        assert abs(prune["achieved_sparsity"] - s) <= 0.02
        sizes[s] = r["metrics"]["artifacts/evaluate/metrics.json"]["final"]["size_bytes"]
    assert sizes[0.3] > sizes[0.4] > sizes[0.5] > 0


def test_sweep_report_is_well_formed(sweep):
    text = sweep["out"].read_text()
    assert "Command: `python -m bench.pipeline_sweep" in text
    assert text.count("| sparsity-0.4 |") == 1 and "| baseline (sparsity-0.3) |" in text and "| sparsity-0.5 |" in text
    png = sweep["out"].with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    points = sweep["data"]["points"]
    assert [p["sparsity"] for p in points] == [0.3, 0.4, 0.5]
    assert all(p["gate_passed"] is False for p in points)  # tiny one-epoch models miss the real mAP floor
