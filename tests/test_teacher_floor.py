"""The distill stage scores its teacher before any student epoch and stops on one under
`distill.min_teacher_map50`, naming the score, the floor and what to do; training sections sized by `min_steps`."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch

from pipeline.config.augment import AugmentParams
from pipeline.config.train import TrainParams, planned_epochs
from pipeline.data.data_yaml import load_data_yaml
from pipeline.model.leafyolo import LeafYOLO
from pipeline.train.run import build_datasets
from pipeline.train.teacher_floor import TeacherBelowFloor, check_teacher_floor
from pipeline.train.trainer import Trainer
from tests.simple_data import write_simple_dataset
from tests.stage_runner import run_stage, write_params

NO_AUG = AugmentParams(hsv_h=0, hsv_s=0, hsv_v=0, translate=0, scale=0, fliplr=0, mosaic=0, mixup=0, copy_paste=0)


@pytest.mark.parametrize(("epochs", "min_steps", "steps_per_epoch", "expected"), [
    (12, 372, 31, 12),   # params.yaml's teacher on the default 1,000 images at batch 32
    (12, 372, 3, 124),   # the same section on 124 images: as many optimizer steps, not 36
    (12, 0, 3, 12),      # min_steps 0: epochs alone
    (30, 372, 31, 30),   # epochs asking for more than min_steps win
    (1, 7, 3, 3),        # rounded up to whole epochs
])
def test_min_steps_adds_whole_epochs_for_a_small_dataset(epochs, min_steps, steps_per_epoch, expected):
    p = TrainParams(epochs=epochs, min_steps=min_steps)
    assert planned_epochs(p, steps_per_epoch) == expected
    assert planned_epochs(p, steps_per_epoch) * steps_per_epoch >= min_steps


def test_min_steps_below_zero_is_refused():
    with pytest.raises(ValueError, match="min_steps must be >= 0"):
        TrainParams(min_steps=-1)


def test_a_100_image_dataset_gets_its_stated_steps(tmp_path, capsys):
    data_yaml = write_simple_dataset(tmp_path / "data", n_images=100, imgsz=64)
    data = load_data_yaml(data_yaml)
    p = TrainParams(epochs=1, min_steps=7, batch_size=32, imgsz=64, optimizer="AdamW", lr0=0.002, augment=NO_AUG,
                    warmup_epochs=0)
    train_set, _ = build_datasets(data, p)
    steps = []
    torch.manual_seed(0)
    result = Trainer(LeafYOLO("leafyolo_u", 2), train_set, p, data.names, tmp_path / "work",
                     progress=False).fit(on_step=lambda step, loss, model: steps.append(step))
    # 100 images at batch 32: 3 optimizer steps an epoch (the last, partial batch dropped); 7 steps need 3 epochs
    assert steps == list(range(9))
    assert (result.epochs, result.steps) == (3, 9)
    assert result.summary()["train_steps"] == 9 and result.summary()["train_epochs"] == 3
    out = capsys.readouterr().out
    assert "training 9 optimizer steps: 3 epochs of 3 batches of 32 images from 100 training images" in out
    assert "raised from 1 epochs by min_steps 7" in out


def test_floor_message_names_the_score_the_floor_and_the_fixes():
    check_teacher_floor(0.31, 0.1, "artifacts/teacher/model.pt", 372)  # a teacher over the floor passes
    with pytest.raises(TeacherBelowFloor) as info:
        check_teacher_floor(0.004, 0.1, "artifacts/teacher/model.pt", 372)
    message = str(info.value)
    for part in ("artifacts/teacher/model.pt", "0.004", "distill.min_teacher_map50 = 0.1", "teacher.train.min_steps",
                 "now 372", "teacher.weights", "distill.alpha: 0"):
        assert part in message


@pytest.mark.slow
def test_a_one_step_teacher_stops_the_distill_stage(tiny_chain, tmp_path):
    """A teacher trained for one optimizer step scores under the floor: the distill stage exits before any student
    epoch, saying so, and the previous student checkpoint is untouched; with alpha 0 the same teacher is ignored."""
    work = tmp_path / "floor"
    shutil.copytree(tiny_chain / "artifacts", work / "artifacts")
    # 16 training images in one batch: one optimizer step
    write_params(work, teacher={"train": {"batch_size": 16}}, distill={"min_teacher_map50": 0.5})
    proc = run_stage("teacher", work)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((work / "artifacts/teacher/metrics.json").read_text())["train_steps"] == 1
    before = (work / "artifacts/distill/model.pt").read_bytes()
    proc = run_stage("distill", work)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    score = re.search(r"scores val mAP50 (\d\.\d{3}), under distill\.min_teacher_map50 = 0\.5", proc.stderr)
    assert score, proc.stderr[-2000:]
    assert float(score.group(1)) < 0.5
    assert "teacher.weights" in proc.stderr and "distill.alpha: 0" in proc.stderr
    assert "training leafyolo_u" not in proc.stdout  # stopped before the student's training
    assert (work / "artifacts/distill/model.pt").read_bytes() == before
    # alpha 0: the student trains alone and the teacher is neither scored nor checked
    write_params(work, teacher={"train": {"batch_size": 16}}, distill={"min_teacher_map50": 0.5, "alpha": 0.0})
    proc = run_stage("distill", work)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "teacher/map50" not in json.loads((work / "artifacts/distill/metrics.json").read_text())
