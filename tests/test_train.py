"""The trainer really learns, resumes after an interruption, distils, and runs under torchrun (DDP, gloo)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipeline.config.augment import AugmentParams
from pipeline.config.train import TrainParams
from pipeline.data.data_yaml import load_data_yaml
from pipeline.io.model_loader import load_model
from pipeline.model.leafyolo import LeafYOLO
from pipeline.train.distill import DistillWeights
from pipeline.train.run import build_datasets
from pipeline.train.trainer import Trainer, lr_at
from tests.simple_data import write_simple_dataset

REPO = Path(__file__).resolve().parents[1]
NO_AUG = AugmentParams(hsv_h=0, hsv_s=0, hsv_v=0, translate=0, scale=0, fliplr=0, mosaic=0, mixup=0, copy_paste=0)


def test_tiny_model_overfits_a_handful_of_images(trained_tiny):
    model, _, root = trained_tiny
    assert model.train_result["val/map50"] > 0.9
    reloaded, ckpt = load_model(root / "runs/tiny/model.pt")
    assert ckpt["names"] == ["square", "disc"] and ckpt["imgsz"] == 64
    assert not (root / "runs/tiny/work/last.pt").exists()  # resume state is dropped once the model is saved


def test_lr_schedule_warms_up_then_decays():
    p = TrainParams(epochs=10, lr0=0.01, lrf=0.1)
    lrs = [lr_at(s, 100, 10, p) for s in range(100)]
    assert lrs[0] < lrs[9] == pytest.approx(0.01)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] == pytest.approx(0.001, rel=0.05)


class Interrupt(Exception):
    pass


def test_interrupted_training_resumes_from_the_last_epoch(tmp_path, monkeypatch, capsys):
    data_yaml = write_simple_dataset(tmp_path / "data", n_images=4, imgsz=64)
    p = TrainParams(epochs=3, batch_size=2, imgsz=64, optimizer="AdamW", lr0=0.002, augment=NO_AUG)
    data = load_data_yaml(data_yaml)
    train_set, _ = build_datasets(data, p)
    calls = {"n": 0}
    original = Trainer._step

    def failing_step(self, *args):
        calls["n"] += 1
        if calls["n"] == 5:  # first step of the third epoch (2 steps per epoch)
            raise Interrupt
        return original(self, *args)

    monkeypatch.setattr(Trainer, "_step", failing_step)
    torch.manual_seed(0)
    with pytest.raises(Interrupt):
        Trainer(LeafYOLO("leafyolo_u", 2), train_set, p, data.names, tmp_path / "work", progress=False).fit()
    assert (tmp_path / "work" / "last.pt").is_file()
    monkeypatch.setattr(Trainer, "_step", original)
    torch.manual_seed(0)
    result = Trainer(LeafYOLO("leafyolo_u", 2), train_set, p, data.names, tmp_path / "work", progress=False).fit()
    assert result.epochs_run == 1
    assert "resuming" in capsys.readouterr().out
    # other settings do not resume from that checkpoint
    torch.manual_seed(0)
    other = TrainParams(epochs=3, batch_size=2, imgsz=64, optimizer="AdamW", lr0=0.001, augment=NO_AUG)
    assert Trainer(LeafYOLO("leafyolo_u", 2), train_set, other, data.names, tmp_path / "work",
                   progress=False).fit().epochs_run == 3


def test_distillation_step_trains_student_with_frozen_teacher(tmp_path):
    data_yaml = write_simple_dataset(tmp_path / "data", n_images=2, imgsz=64)
    data = load_data_yaml(data_yaml)
    p = TrainParams(epochs=1, batch_size=2, imgsz=64, optimizer="AdamW", augment=NO_AUG)
    train_set, _ = build_datasets(data, p)
    teacher = LeafYOLO("leafyolo_n", 2).eval()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = LeafYOLO("leafyolo_u", 2)
    s_before = student.head.cls_pred.weight.clone()
    trainer = Trainer(student, train_set, p, data.names, tmp_path / "w", teacher=teacher,
                      distill=DistillWeights(alpha=0.7), progress=False)
    assert trainer.adapters is not None and len(trainer.adapters.maps) == 3
    trainer.fit()
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert not torch.equal(s_before, student.head.cls_pred.weight)


def test_bad_train_params_name_the_key():
    with pytest.raises(ValueError, match="epochs"):
        TrainParams(epochs=0)
    with pytest.raises(ValueError, match="imgsz"):
        TrainParams(imgsz=100)
    with pytest.raises(ValueError, match="optimizer"):
        TrainParams(optimizer="Adam")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_cpu_processes_keep_replicas_in_sync(tmp_path):
    data_yaml = write_simple_dataset(tmp_path / "data", n_images=8, imgsz=64)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", str(REPO / "tests" / "ddp_worker.py"), str(data_yaml), str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    init = torch.load(tmp_path / "init.pt")
    assert (r0["world"], r1["world"]) == (2, 2) and {r0["rank"], r1["rank"]} == {0, 1}
    key = "head.cls_pred.weight"
    assert torch.allclose(r0["state"][key], r1["state"][key]) and not torch.equal(r0["state"][key], init[key])
