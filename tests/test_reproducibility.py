"""Same params, seed, machine and thread count give the same bytes: the tiny chain run twice (each stage as its own
process, then again by `dvc repro` in a scratch project) and an API training run twice, compared by hash; and the
checks that stop a run before any work."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.stage_runner import REPO, run_stage, write_params

# Every model, data and export artifact of the chain; metrics are compared apart from their timings.
ARTIFACTS = ("teacher/model.pt", "distill/model.pt", "prune/model.pt", "finetune/model.pt", "calibrate/calib.npy",
             "calibrate/model_int8.onnx", "onnx/model_fp32.onnx", "onnx/model_fp16.onnx", "tflite/model_int8.tflite")
METRICS = ("data/report.json", "teacher/metrics.json", "distill/metrics.json", "prune/metrics.json",
           "finetune/metrics.json", "calibrate/metrics.json", "onnx/metrics.json", "tflite/metrics.json",
           "evaluate/metrics.json")

pytestmark = pytest.mark.slow


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def without_timings(value):
    """Metrics minus what a clock measured (wall seconds, throughput, latency)."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items()
                if not ("seconds" in k or k.startswith("latency") or k == "images_per_second")}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


@pytest.fixture(scope="module")
def second_chain(dvc_sweep) -> Path:
    """The same tiny params run a second time, by `dvc repro` in the sweep's scratch project (only the gate's
    budgets differ there, and the gate writes no artifact)."""
    return dvc_sweep["project"]


def test_two_chain_runs_give_identical_files(tiny_chain, second_chain):
    a, b = tiny_chain / "artifacts", second_chain / "artifacts"
    assert tree_hashes(a / "data/dataset") == tree_hashes(b / "data/dataset")
    different = [name for name in ARTIFACTS if sha256(a / name) != sha256(b / name)]
    assert not different, f"these artifacts differ between two runs of the same params: {different}"


def test_two_chain_runs_give_identical_metrics_apart_from_timings(tiny_chain, second_chain):
    for name in METRICS:
        first = without_timings(json.loads((tiny_chain / "artifacts" / name).read_text()))
        second = without_timings(json.loads((second_chain / "artifacts" / name).read_text()))
        assert first == second, name
    final = json.loads((tiny_chain / "artifacts/evaluate/metrics.json").read_text())["final"]
    assert 0 <= final["map50_ci_low"] <= final["map50_ci_high"] <= 1  # a percentile interval need not hold the estimate


API_TRAINING = """
import hashlib, sys
import torch
from leafyolo import LEAFYOLO
model = LEAFYOLO('detect', variant='leafyolo_u', nc=5)
model.train(data=sys.argv[1], epochs=2, batch_size=4, img_size=64, teacher=None, project=sys.argv[2], name='run')
h = hashlib.sha256()
for k, v in model.model.state_dict().items():
    h.update(k.encode()); h.update(v.detach().cpu().contiguous().numpy().tobytes())
print('HASH', h.hexdigest())
"""


def api_training_hash(data_yaml: Path, project: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}
    proc = subprocess.run([sys.executable, "-c", API_TRAINING, str(data_yaml), str(project)], cwd=project.parent,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return next(line.split()[1] for line in proc.stdout.splitlines() if line.startswith("HASH"))


def test_two_api_trainings_give_identical_weights(tiny_chain, tmp_path):
    data_yaml = tiny_chain / "artifacts/data/dataset/data.yaml"
    first = api_training_hash(data_yaml, tmp_path / "a")
    assert first == api_training_hash(data_yaml, tmp_path / "b")


# --- stopped before any work --------------------------------------------------------------------------------

def without_key(work: Path, dotted: str) -> None:
    params = yaml.safe_load((work / "params.yaml").read_text())
    *parents, last = dotted.split(".")
    node = params
    for p in parents:
        node = node[p]
    del node[last]
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.parametrize("stage, key", [("gate", "gate.min_map50"), ("data", "data.seed"),
                                        ("data", "distill.train.lr0"), ("evaluate", "evaluate.bootstrap_seed"),
                                        ("data", "tflite.quant_type")])
def test_a_missing_key_stops_the_stage_naming_it(tiny_chain, tmp_path, stage, key):
    work = tmp_path / "missing"
    shutil.copytree(tiny_chain / "artifacts", work / "artifacts")
    write_params(work)
    without_key(work, key)
    before = tree_hashes(work / "artifacts")
    proc = run_stage(stage, work)
    assert proc.returncode != 0 and f"{key} is missing from params.yaml" in proc.stderr, proc.stderr[-2000:]
    assert tree_hashes(work / "artifacts") == before  # nothing written, nothing lost


@pytest.mark.parametrize("override, message", [
    ({"tflite": {"quant_type": "per-block"}}, "tflite.quant_type must be one of ('per-tensor', 'per-channel'), got 'per-block'"),
    ({"prune": {"target_bytes": 500_000}, "distill": {"variant": "leafyolo_s"}},
     "no bytes model for 'leafyolo_s' with tflite.quant_type='per-tensor'"),
])
def test_bad_export_params_stop_the_data_stage(tiny_chain, tmp_path, override, message):
    """An export setting the tflite (or prune) stage could only refuse after the training stages is refused first."""
    work = tmp_path / "export_params"
    shutil.copytree(tiny_chain / "artifacts", work / "artifacts")
    write_params(work, **override)
    before = tree_hashes(work / "artifacts")
    proc = run_stage("data", work)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-2000:]
    assert tree_hashes(work / "artifacts") == before


def test_a_calibration_subset_larger_than_the_split_uses_the_whole_split(tiny_chain, tmp_path):
    work = tmp_path / "calib"
    shutil.copytree(tiny_chain / "artifacts", work / "artifacts")
    write_params(work, calibrate={"subset_size": 1000})
    proc = run_stage("calibrate", work)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "calibrating on all 16 training images" in proc.stdout
    metrics = json.loads((work / "artifacts/calibrate/metrics.json").read_text())
    assert metrics["subset_size"] == 1000 and metrics["images_used"] == 16


def test_a_teacher_for_other_classes_stops_the_data_stage(tiny_chain, tmp_path):
    import torch

    from pipeline.io.checkpoint import read_checkpoint

    work = tmp_path / "teacher_nc"
    ckpt = read_checkpoint(tiny_chain / "artifacts/teacher/model.pt")
    (work / "weights").mkdir(parents=True)
    # a well-formed checkpoint of a 7-class model: the data stage's own check has to catch it, not the field checks
    names = list(ckpt["names"]) + ["extra0", "extra1"]
    torch.save({**ckpt, "nc": 7, "names": names}, work / "weights/teacher.pt")
    write_params(work, teacher={"weights": "weights/teacher.pt", "dep": "weights"})
    proc = run_stage("data", work)
    assert proc.returncode != 0
    assert "teacher.weights weights/teacher.pt predicts nc=7" in proc.stderr and "nc=5" in proc.stderr


def test_teacher_weights_outside_teacher_dep_are_refused(tiny_chain, tmp_path):
    work = tmp_path / "teacher_dep"
    (work / "weights").mkdir(parents=True)
    shutil.copy(tiny_chain / "artifacts/teacher/model.pt", work / "weights/teacher.pt")
    write_params(work, teacher={"weights": "weights/teacher.pt", "dep": "pipeline/model"})
    (work / "pipeline/model").mkdir(parents=True)
    proc = run_stage("data", work)
    assert proc.returncode != 0 and "teacher.dep='pipeline/model' does not contain" in proc.stderr, proc.stderr


def test_a_user_dataset_outside_data_dep_is_refused(tiny_chain, tmp_path):
    work = tmp_path / "data_dep"
    shutil.copytree(tiny_chain / "artifacts/data/dataset", work / "mydata")
    (work / "elsewhere").mkdir()
    write_params(work, data={"source": "mydata/data.yaml", "dep": "elsewhere"})
    proc = run_stage("data", work)
    assert proc.returncode != 0 and "data.dep='elsewhere' does not contain" in proc.stderr, proc.stderr
    assert not (work / "artifacts").exists()


def test_a_malicious_teacher_checkpoint_runs_nothing(tmp_path):
    import torch

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    work = tmp_path / "evil"
    (work / "weights").mkdir(parents=True)
    torch.save({"model": Payload(), "nc": 5}, work / "weights/teacher.pt")
    write_params(work, teacher={"weights": "weights/teacher.pt", "dep": "weights"})
    proc = run_stage("data", work)
    assert proc.returncode != 0 and "refused without running it" in proc.stderr, proc.stderr[-2000:]
    assert not marker.exists()
