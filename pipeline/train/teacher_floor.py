"""The distill stage's check of its teacher, before any student epoch: a teacher is worth imitating only when it
detects. Its val mAP50 at the student's image size is recorded beside the student's (`dvc exp show` then says
whether the teacher leads), and a teacher under `distill.min_teacher_map50` stops the stage."""

from __future__ import annotations

from pathlib import Path

from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import YoloDataset
from pipeline.model.leafyolo import LeafYOLO


class TeacherBelowFloor(RuntimeError):
    """The teacher scores under `distill.min_teacher_map50`; the message names the score, the floor and the fixes."""


def teacher_scores(teacher: LeafYOLO, data_yaml: str | Path, imgsz: int) -> dict[str, float]:
    """The teacher's val mAP50 and mAP50-95 on the data of `data_yaml` at `imgsz` (the student's training size)."""
    from pipeline.evaluate.evaluator import evaluate
    from pipeline.infer.backends import TorchBackend

    data = load_data_yaml(data_yaml)
    val = YoloDataset(data.val, data.nc, imgsz, augment=None, names=data.names)
    m = evaluate(TorchBackend(teacher), val, progress=True)
    return {"teacher/map50": float(m["map50"]), "teacher/map": float(m["map"])}


def check_teacher_floor(map50: float, floor: float, teacher_path: str | Path, min_steps: int) -> None:
    """Raise TeacherBelowFloor when `map50` < `floor`."""
    if map50 >= floor:
        return
    raise TeacherBelowFloor(
        f"the teacher {teacher_path} scores val mAP50 {map50:.3f}, under distill.min_teacher_map50 = {floor:g}: "
        f"with distill.alpha > 0 the student would spend its training imitating a model that does not detect. "
        f"Train the teacher longer (teacher.train.min_steps, now {min_steps}, or teacher.train.epochs), give a "
        f"trained checkpoint as teacher.weights, or set distill.alpha: 0 to train the student alone "
        f"(distill.min_teacher_map50: 0 turns this check off).")
