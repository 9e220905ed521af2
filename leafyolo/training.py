"""What `LEAFYOLO.train` adds around `pipeline.train.run.train_model`: run folders, the class count of the
data, and the teacher (a checkpoint, or a variant trained first on the same data and cached)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from leafyolo.options import TrainOptions, augment_for_strength
from pipeline.common.seeding import seed_everything
from pipeline.config.train import TrainParams, budget_text
from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.labels import list_images
from pipeline.io.model_loader import load_model
from pipeline.model.count import count_params
from pipeline.model.leafyolo import LeafYOLO
from pipeline.model.variants import VARIANTS
from pipeline.stage.steps import Steps
from pipeline.train.distill import DistillWeights
from pipeline.train.run import train_model
from pipeline.train.trainer import TrainResult, pick_device


def train_params(o: TrainOptions, imgsz: int) -> TrainParams:
    return TrainParams(epochs=o.epochs, min_steps=o.min_steps, batch_size=o.batch_size, imgsz=imgsz,
                       optimizer=o.optimizer, lr0=o.lr0,
                       lrf=o.lrf, momentum=o.momentum, weight_decay=o.weight_decay, warmup_epochs=o.warmup_epochs,
                       ema_decay=o.ema_decay, ema_tau=o.ema_tau, box_weight=o.box_weight, cls_weight=o.cls_weight, seed=o.seed,
                       workers=o.workers, val_every=o.val_every, amp=o.amp, freeze_backbone=o.freeze_backbone,
                       augment=augment_for_strength(o.augment_strength))


def run_dir(project: str | Path, name: str | None) -> Path:
    """`project/name`, or the first free `project/exp`, `exp2`, ... when no name is given."""
    project = Path(project)
    if name:
        return project / name
    k = 1
    while (project / (f"exp{k}" if k > 1 else "exp")).exists():
        k += 1
    return project / (f"exp{k}" if k > 1 else "exp")


def adapt_nc(model: LeafYOLO, nc: int, pruning_history: list, seed: int) -> LeafYOLO:
    """The same model with `nc` classes: every tensor whose shape still fits is kept (all but the class conv)."""
    if model.nc == nc:
        return model
    if pruning_history:
        raise ValueError(f"the pruned model predicts {model.nc} classes but the data has {nc}; "
                         f"prune a model trained on this data instead")
    new = LeafYOLO(model.variant, nc, act=model.act, seed=seed)
    own = new.state_dict()
    kept = {k: v for k, v in model.state_dict().items() if k in own and own[k].shape == v.shape}
    new.load_state_dict(kept, strict=False)
    print(f"rebuilt the class output for nc={nc} (the model had nc={model.nc}); "
          f"{len(kept)}/{len(own)} weight tensors kept", flush=True)
    return new


def _dataset_key(data_yaml: str | Path) -> dict[str, Any]:
    """What identifies a dataset for the teacher cache: the yaml (path, text) and its train images (names, sizes)."""
    path = Path(data_yaml).resolve()
    files = list_images(load_data_yaml(path).train)
    return {"yaml": str(path), "text": path.read_text(), "train": [(f.name, f.stat().st_size) for f in files]}


def teacher_cache_path(project: str | Path, variant: str, act: str, data_yaml: str | Path, p: TrainParams) -> Path:
    key = json.dumps({"variant": variant, "act": act, "data": _dataset_key(data_yaml), "params": asdict(p)},
                     sort_keys=True, default=str)
    return Path(project) / "teachers" / f"{variant}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.pt"


def resolve_teacher(teacher: Any, data_yaml: str, nc: int, p: TrainParams, project: str | Path, act: str,
                    device: str | None, step: Steps) -> LeafYOLO | None:
    """None; a LeafYOLO (the facade passes a LEAFYOLO's module); a variant name (trained first with the student's
    settings, minus freeze_backbone, cached in `<project>/teachers/<variant>-<hash>.pt` and reused when the
    variant, data, and settings match); or a checkpoint path."""
    if teacher is None or (isinstance(teacher, str) and teacher.lower() in ("", "none")):
        return None
    if isinstance(teacher, LeafYOLO):
        model = teacher
    elif isinstance(teacher, str) and teacher in VARIANTS:
        p = replace(p, freeze_backbone=False)
        cached = teacher_cache_path(project, teacher, act, data_yaml, p)
        if cached.is_file():
            step(f"reusing the cached {teacher} teacher {cached}")
            model = load_model(cached)[0]
        else:
            model = LeafYOLO(teacher, nc, act=act, seed=p.seed)
            step(f"training the {teacher} teacher ({count_params(model):,} params) for {budget_text(p)} at "
                 f"{p.imgsz}px -> {cached}")
            model = train_model(model, data_yaml, p, cached, cached.with_suffix(".work"), device=device).model
    elif isinstance(teacher, (str, Path)) and Path(teacher).suffix in (".pt", ".pth"):
        step(f"loading the teacher {teacher}")
        model = load_model(teacher)[0]
    else:
        raise ValueError(f"teacher must be None, a variant name {sorted(VARIANTS)} or a .pt checkpoint, "
                         f"got {teacher!r}")
    if model.nc != nc:
        raise ValueError(f"the teacher predicts {model.nc} classes but {data_yaml} has nc={nc}")
    return model.eval()


def run(student: LeafYOLO, pruning_history: list, default_imgsz: int,
        o: TrainOptions) -> tuple[TrainResult, Path, list[str], int]:
    """One `LEAFYOLO.train` call on the facade's module `student` (with its pruning history): (result, checkpoint
    written, class names, image size)."""
    if o.data is None:
        raise ValueError("LEAFYOLO.train() needs data='path/to/data.yaml'")
    pick_device(o.device)  # fails now, before any teacher is trained, e.g. for device='0' without CUDA
    imgsz = o.img_size or default_imgsz
    p = train_params(o, imgsz)
    data = load_data_yaml(o.data)
    step = Steps("train", 3)
    seed_everything(o.seed)
    model = adapt_nc(student, data.nc, pruning_history, o.seed)
    out = run_dir(o.project, o.name)
    teacher = resolve_teacher(o.teacher, str(o.data), data.nc, p, o.project, model.act, o.device, step) \
        if o.distillation_alpha > 0 else None
    if teacher is None:
        step("no teacher")
    step(f"training {model.variant} ({count_params(model):,} params) for {budget_text(p)} at {imgsz}px"
         + (f", distilling with alpha={o.distillation_alpha}" if teacher is not None else "")
         + (", backbone frozen" if p.freeze_backbone else "") + f" -> {out}")
    distill = DistillWeights(o.distillation_alpha, o.distillation_temperature) if teacher is not None else None
    result = train_model(model.train(), o.data, p, out / "model.pt", out / "work", teacher=teacher, distill=distill,
                         pruning_history=pruning_history, device=o.device)
    step(f"wrote {out / 'model.pt'}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()
                                                  if k.startswith("val/")))
    return result, out / "model.pt", data.names, imgsz
