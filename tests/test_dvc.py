"""`dvc repro`, `dvc exp run -S prune.sparsity=0.4` and a queued sweep (`dvc exp run --queue` + `dvc queue start`)
on a tiny params set in a scratch git repo, through `bench.pipeline_sweep`: the experiment re-runs `prune` and what
follows while data, teacher and distill come from the DVC cache, and `dvc exp show` holds every sparsity."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from bench.dvc_project import commit, exp_show, load_params, make_project, run
from tests.stage_runner import REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("dvc", path=str(Path(sys.executable).parent)) is None,
                       reason="dvc is not installed in this environment"),
]


@pytest.fixture(scope="module")
def sweep(dvc_sweep) -> dict:
    return dvc_sweep


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


def test_a_pulled_clone_reruns_nothing(sweep, tmp_path):
    """Team and CI reuse: push the cached chain to a folder remote, clone the repo elsewhere, pull, repro."""
    project = sweep["project"]  # on its baseline commit
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-d", "shared", str(remote)], project)
    commit(project, "DVC remote")
    run(["dvc", "push"], project)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    run(["dvc", "pull"], clone)
    assert (clone / "artifacts/tflite/model_int8.tflite").read_bytes() == \
        (project / "artifacts/tflite/model_int8.tflite").read_bytes()
    assert "up to date" in run(["dvc", "status"], clone).stdout
    assert "Running stage" not in run(["dvc", "repro"], clone).stdout


@pytest.fixture(scope="module")
def user_project(tmp_path_factory, tiny_chain) -> dict:
    """A scratch project on a user's dataset (outside the project) and a user's teacher checkpoint."""
    from pipeline.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("user")
    data_yaml = generate_dataset(root / "mydata", n_train=6, n_val=3, imgsz=64, seed=5)
    (root / "weights").mkdir()
    shutil.copy(tiny_chain / "artifacts/teacher/model.pt", root / "weights/teacher.pt")
    params = load_params(REPO / "tests/tiny_params.yaml")
    params["data"].update(source=str(data_yaml), dep=str(root / "mydata"))
    params["teacher"].update(weights=str(root / "weights/teacher.pt"), dep=str(root / "weights"))
    project = make_project(root / "project", params)
    run(["dvc", "repro", "teacher"], project)
    return {"project": project, "data": root / "mydata", "weights": root / "weights/teacher.pt"}


def status(project: Path, stage: str) -> str:
    return run(["dvc", "status", stage], project).stdout


def test_unchanged_user_inputs_rerun_nothing(user_project):
    project = user_project["project"]
    assert "up to date" in status(project, "teacher")
    assert "Running stage" not in run(["dvc", "repro", "teacher"], project).stdout


def test_editing_a_user_label_reruns_the_data_stage_and_what_follows(user_project):
    project, label = user_project["project"], user_project["data"] / "labels/train/00002.txt"
    label.write_text(label.read_text() + "0 0.5 0.5 0.2 0.2\n")
    assert "modified:" in status(project, "data") and str(user_project["data"]) in status(project, "data")
    out = run(["dvc", "repro", "teacher"], project).stdout
    assert "Running stage 'data'" in out and "Running stage 'teacher'" in out  # the manifest changed the output


def test_adding_a_user_image_reruns_the_data_stage(user_project):
    project, images = user_project["project"], user_project["data"] / "images/val"
    shutil.copy(images / "00000.png", images / "00099.png")
    shutil.copy(user_project["data"] / "labels/val/00000.txt", user_project["data"] / "labels/val/00099.txt")
    assert "modified:" in status(project, "data")
    assert "Running stage 'data'" in run(["dvc", "repro", "data"], project).stdout


def test_replacing_the_user_teacher_reruns_the_teacher_stage(user_project):
    import torch

    from pipeline.io.checkpoint import read_checkpoint

    project, weights = user_project["project"], user_project["weights"]
    run(["dvc", "repro", "teacher"], project)
    ckpt = read_checkpoint(weights)
    torch.save({**ckpt, "metrics": {"note": 1.0}}, weights)
    assert str(weights.parent) in status(project, "teacher")
    out = run(["dvc", "repro", "teacher"], project).stdout
    assert "Running stage 'teacher'" in out and "Running stage 'data'" not in out
