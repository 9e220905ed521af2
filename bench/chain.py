"""The training chain (teacher -> distill -> prune -> finetune) in one process, as the stages run it, for the
studies that compare recipes or variants without DVC (`studies.recipe_spread`, `studies.arch_compare`,
`studies.finetune_spread`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.common.seeding import seed_everything
from pipeline.compress.prune import PruneResult, prune
from pipeline.config.stages import DistillParams, FinetuneParams, PruneParams, TeacherParams
from pipeline.data.data_yaml import load_data_yaml
from pipeline.io.model_loader import load_model
from pipeline.model.leafyolo import LeafYOLO
from pipeline.train.distill import DistillWeights
from pipeline.train.run import train_model
from pipeline.train.trainer import TrainResult


@dataclass
class StudentRuns:
    distill: TrainResult
    pruned: PruneResult
    finetune: TrainResult
    seconds: dict[str, float]  # training wall time of "distill" and "finetune"


def train_teacher(tp: TeacherParams, data_yaml: str | Path, out: Path, work: Path) -> TrainResult:
    """The teacher stage's training; the checkpoint goes to `out`, the resume file under `work`."""
    seed_everything(tp.train.seed)
    teacher = LeafYOLO(tp.variant, load_data_yaml(data_yaml).nc, act=tp.act, seed=tp.train.seed)
    return train_model(teacher, data_yaml, tp.train, out, work / "t")


def train_student(teacher: LeafYOLO | None, dp: DistillParams, pp: PruneParams, fp: FinetuneParams,
                  data_yaml: str | Path, work: Path) -> StudentRuns:
    """Distill `dp.variant` from `teacher`, prune it by `pp.sparsity` (from the saved checkpoint, as the prune stage
    does) and fine-tune it; checkpoints and resume files under `work`."""
    seconds = {}
    t0 = time.perf_counter()
    seed_everything(dp.train.seed)
    student = LeafYOLO(dp.variant, load_data_yaml(data_yaml).nc, act=dp.act, seed=dp.train.seed)
    distill = train_model(student, data_yaml, dp.train, work / "distill.pt", work / "d",
                          teacher=teacher if dp.alpha > 0 else None,
                          distill=DistillWeights(dp.alpha, dp.temperature, dp.cls_weight, dp.feat_weight))
    seconds["distill"] = round(time.perf_counter() - t0, 1)
    pruned, finetune, seconds["finetune"] = prune_and_finetune(work / "distill.pt", teacher, pp, fp, data_yaml, work)
    return StudentRuns(distill, pruned, finetune, seconds)


def prune_and_finetune(distilled: Path, teacher: LeafYOLO | None, pp: PruneParams, fp: FinetuneParams,
                       data_yaml: str | Path, work: Path) -> tuple[PruneResult, TrainResult, float]:
    """The prune and finetune stages from a saved distilled checkpoint (as the prune stage loads it); the
    fine-tuned checkpoint goes to `work`/finetune.pt. Returns the pruning, the finetune and its seconds."""
    model, ckpt = load_model(distilled)
    pruned = prune(model, pp.sparsity, ckpt["imgsz"], importance=pp.importance, verbose=False)
    t0 = time.perf_counter()
    finetune = finetune_pruned(pruned.model, pruned.pruning_history, fp, data_yaml, work / "finetune.pt", work / "f",
                               teacher)
    return pruned, finetune, round(time.perf_counter() - t0, 1)


def finetune_pruned(model: LeafYOLO, pruning_history: list | None, fp: FinetuneParams, data_yaml: str | Path,
                    out: Path, resume: Path, teacher: LeafYOLO | None = None) -> TrainResult:
    """The finetune stage's training of a pruned model (distilling from `teacher` when `fp.alpha` > 0)."""
    if fp.alpha > 0 and teacher is None:
        raise ValueError(f"finetune.alpha={fp.alpha} distills from the teacher, and none was given")
    seed_everything(fp.train.seed)
    return train_model(model.train(), data_yaml, fp.train, out, resume, teacher=teacher if fp.alpha > 0 else None,
                       distill=DistillWeights(fp.alpha, fp.temperature) if fp.alpha > 0 else None,
                       pruning_history=pruning_history)
