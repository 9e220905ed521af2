"""Shared fixtures, each built once per session: the tiny stage chain, the DVC sweep project on the same tiny
params, and a leafyolo_u trained through the API until it really detects. Tests treat them as read-only (copy
what they change)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.stage_runner import ORDER, REPO, run_stage, write_params


def pytest_report_header(config) -> str:
    """The CPU that runs the suite, in the log's header: a tiny training (every trained fixture here) ends
    differently on an Intel and an AMD CPU, so a failure report should say which machine it came from."""
    import torch

    from bench.stamp import cpu_model

    return (f"cpu: {cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__} "
            f"CPU capability {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads")


def run_chain(work: Path, stages=ORDER[:-1]) -> dict[str, float]:
    """Every stage's exact dvc.yaml command, in order, in `work` (which holds params.yaml); wall time per stage."""
    walls = {}
    for stage in stages:
        t0 = time.time()
        proc = run_stage(stage, work)
        walls[stage] = time.time() - t0
        assert proc.returncode == 0, f"stage {stage} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        assert f"[{stage} 1/" in proc.stdout  # numbered progress
    return walls


@pytest.fixture(scope="session")
def tiny_chain(tmp_path_factory) -> Path:
    """The whole chain, data to evaluate, on tests/tiny_params.yaml, each stage run as its own process."""
    work = tmp_path_factory.mktemp("chain")
    write_params(work)
    walls = run_chain(work)
    (work / "walls.json").write_text(json.dumps(walls))
    return work


@pytest.fixture(scope="session")
def dvc_sweep(tmp_path_factory) -> dict:
    """`python -m bench.pipeline_sweep` on the tiny params (cold `dvc repro`, `dvc exp run -S prune.sparsity=0.4`, a
    queued experiment), then the project put back on its baseline commit (`git reset --hard`, `dvc checkout`)."""
    from bench.dvc_project import run

    work = tmp_path_factory.mktemp("sweep")
    out = work / "report" / "sweep.md"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}
    proc = subprocess.run([sys.executable, "-m", "bench.pipeline_sweep", "--params", str(REPO / "tests/tiny_params.yaml"),
                           "--sparsities", "0.3", "0.4", "0.5", "--work", str(work), "--out", str(out), "--timeout", "900"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    project = work / "project"
    run(["git", "reset", "-q", "--hard", "HEAD"], project)  # `dvc exp run` left the 0.4 experiment applied
    run(["dvc", "checkout", "--force"], project)
    return {"project": project, "out": out, "data": json.loads(out.with_suffix(".json").read_text())}


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory):
    """(LEAFYOLO, val images, root): leafyolo_u trained through the API for 60 epochs on 4 easy 64 px images
    (tests/simple_data.py) until val mAP50 > 0.9, so comparisons are made on confident, real detections."""
    from leafyolo import LEAFYOLO
    from tests.simple_data import write_simple_dataset

    root = tmp_path_factory.mktemp("trained")
    data = write_simple_dataset(root / "data", n_images=4, imgsz=64)
    model = LEAFYOLO("detect", variant="leafyolo_u")
    out = model.train(data=str(data), epochs=60, batch_size=4, img_size=64, optimizer="AdamW", lr0=0.005, lrf=0.1,
                      momentum=0.9, warmup_epochs=5, augment_strength=0, ema_decay=0.0, project=str(root / "runs"),
                      name="tiny")
    model.train_result = out
    images = sorted((root / "data" / "images" / "val").glob("*.png"))
    return model, images, root


def _no_network(*args, **kwargs):
    raise OSError("network access attempted during an export test")


@pytest.fixture(scope="session")
def converted(tmp_path_factory):
    """(export info, folder, calibration images): a random leafyolo_u (nc=3, 64 px) exported to ONNX and converted
    to full-INT8 TFLite once per session with the network blocked (~40 s); the INT8 file is info["path"]."""
    import socket

    from pipeline.export.onnx_export import export_onnx
    from pipeline.export.tflite_export import export_tflite_int8
    from tests.test_export_onnx import IMGSZ, make_model, synthetic_images

    d = tmp_path_factory.mktemp("tflite")
    export_onnx(make_model(), d / "model.onnx", IMGSZ)
    calib = synthetic_images(12, seed=5)
    cwd_before = sorted(os.listdir(os.getcwd()))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket, "create_connection", _no_network)
        info = export_tflite_int8(d / "model.onnx", d / "out", calib, workdir=d / "work")
    assert sorted(os.listdir(os.getcwd())) == cwd_before  # cwd restored, nothing written there
    return info, d, calib
