"""`leafyolo predict|train|val|export|info`, end to end on a generated 4-image dataset in a scratch folder.

Most calls go through `leafyolo.cli.main([...])` in this process (the console script `leafyolo` calls the same
`main`); one runs `python -m leafyolo.cli` in a fresh process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from leafyolo import LEAFYOLO
from leafyolo.cli import build_parser, main
from leafyolo.options import ExportOptions, PredictOptions, TrainOptions, ValOptions
from pipeline.infer.backends import open_model
from pipeline.infer.predict import preprocess, read_image
from tests.detection_checks import assert_rejects_perturbed, conf_below_top
from tests.simple_data import write_simple_dataset

REPO = Path(__file__).resolve().parents[1]
VERBS = {"predict": PredictOptions, "train": TrainOptions, "val": ValOptions, "export": ExportOptions, "info": None}


def test_help_explains_every_option(capsys):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "leafyolo.cli", "--help"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and all(verb in proc.stdout for verb in VERBS)
    subparsers = next(a for a in build_parser()._actions if a.dest == "verb").choices
    for verb, cls in VERBS.items():
        with pytest.raises(SystemExit) as exit_info:
            main([verb, "--help"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        for action in subparsers[verb]._actions:
            assert action.help and len(action.help) > 10, f"{verb} {action.option_strings} has no help"
        for f in dataclasses.fields(cls) if cls else []:
            assert "--" + f.name.replace("_", "-") in out  # every API keyword is a flag


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    write_simple_dataset(root, n_images=4, imgsz=64)
    return root


@pytest.fixture(autouse=True)
def in_scratch(scratch, monkeypatch):
    monkeypatch.chdir(scratch)


def test_info_train_val_export_predict(capsys, trained_tiny):
    assert main(["info", "--model", "leafyolo_u", "--img-size", "64"]) == 0
    out = capsys.readouterr().out
    n = sum(p.numel() for p in LEAFYOLO("leafyolo_u").parameters())
    assert f"{n:,} parameters" in out and "GFLOPs" in out and "head.cls_pred" in out

    assert main(["train", "--model", "leafyolo_u", "--data", "data.yaml", "--epochs", "1", "--batch-size", "4",
                 "--img-size", "64", "--teacher", "none", "--augment-strength", "0.5", "--no-amp",
                 "--project", "runs", "--name", "cli"]) == 0
    assert "checkpoint: runs/cli/model.pt" in capsys.readouterr().out

    assert main(["val", "--model", "runs/cli/model.pt", "--json", "val.json"]) == 0
    assert "mAP50-95" in capsys.readouterr().out
    assert set(json.loads(Path("val.json").read_text())["per_class"]) == {"square", "disc"}

    assert main(["export", "--model", "runs/cli/model.pt", "--format", "onnx", "--dynamic",
                 "--opset-version", "12"]) == 0
    assert "runs/cli/model.onnx" in capsys.readouterr().out and Path("runs/cli/model.onnx").is_file()
    assert main(["export", "--model", "runs/cli/model.pt", "--format", "tflite", "--fp16"]) == 0
    assert "bytes" in capsys.readouterr().out and Path("runs/cli/model_float16.tflite").is_file()
    assert main(["info", "--model", "runs/cli/model_float16.tflite"]) == 0
    assert "input images" in capsys.readouterr().out.replace(":", "")

    # predict, every format. The 1-epoch model above scores about its 0.01 prior everywhere, its scores ~1e-8 apart
    # (closer than .pt and .onnx differ), so .pt and .onnx are compared on a model that really detects: conftest's
    # trained_tiny (trained on these same 4 images), copied here, at a threshold from its own scores.
    shutil.copy(trained_tiny[0].ckpt_path, "runs/tiny.pt")
    assert main(["export", "--model", "runs/tiny.pt", "--format", "onnx", "--dynamic"]) == 0
    images = sorted(Path("images/val").glob("*.png"))
    scores = open_model("runs/tiny.pt")(np.stack([preprocess(read_image(p), 64)[0] for p in images]))[1]
    conf = f"{conf_below_top(scores):.6f}"
    runs = {}
    for model in ("runs/tiny.pt", "runs/tiny.onnx", "runs/cli/model_float16.tflite"):
        name = Path(model).name
        assert main(["predict", "--model", model, "--source", "images/val", "--conf", conf,
                     "--json", f"{name}.json", "--save-dir", f"pred_{name}"]) == 0
        assert "saved 4 images" in capsys.readouterr().out
        assert len(list(Path(f"pred_{name}").glob("*.png"))) == 4
        runs[name] = json.loads(Path(f"{name}.json").read_text())
    assert all(len(r["classes"]) >= 1 for r in runs["tiny.pt"])  # conf lies below every image's top score
    for a, b in zip(runs["tiny.pt"], runs["tiny.onnx"]):  # FP32 ONNX: the same detections
        same_detections(a, rows_of(b))
    first = runs["tiny.pt"][0]
    assert_rejects_perturbed(lambda rows: same_detections(first, rows), rows_of(runs["tiny.onnx"][0]), box=2e-3,
                             score=2e-5)
    assert [r["image"] for r in runs["model_float16.tflite"]] == [r["image"] for r in runs["tiny.pt"]]


def rows_of(result: dict) -> np.ndarray:
    """One image of `predict --json` as detection rows [k, 6] (x1 y1 x2 y2 score cls)."""
    return np.array([[*box, score, cls] for box, score, cls in zip(result["boxes"], result["scores"],
                                                                   result["classes"])], np.float64).reshape(-1, 6)


def same_detections(a: dict, rows: np.ndarray) -> None:
    assert a["classes"] == rows[:, 5].astype(int).tolist()
    np.testing.assert_allclose(np.reshape(a["boxes"], (-1, 4)), rows[:, :4], rtol=0, atol=1e-3)
    np.testing.assert_allclose(a["scores"], rows[:, 4], rtol=0, atol=1e-5)


def test_errors_are_reported_not_raised(capsys):
    assert main(["predict", "--model", "missing.pt", "--source", "images/val"]) == 2
    assert "model file not found: missing.pt" in capsys.readouterr().err
    LEAFYOLO("leafyolo_u", nc=2).export(format="onnx", img_size=64, file="plain.onnx")
    assert main(["train", "--model", "plain.onnx", "--data", "data.yaml", "--epochs", "1"]) == 2
    assert "leafyolo train: error: train needs a PyTorch model" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["train", "--data", "data.yaml", "--epochs", "1", "--device", "0"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # an unknown flag: argparse names it
        main(["train", "--data", "data.yaml", "--epoch", "1"])
    assert exit_info.value.code == 2 and "--epoch" in capsys.readouterr().err


def test_python_m_entry_point_predicts(scratch):
    img = scratch / "one.jpg"
    Image.open(scratch / "images/val/000.png").convert("RGB").save(img)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "leafyolo.cli", "predict", "--model", "leafyolo_u", "--source",
                           str(img), "--img-size", "64"], cwd=scratch, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{img}: " in proc.stdout and "detections" in proc.stdout
