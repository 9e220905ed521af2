"""`compress_with_distillation`: the pipeline's distill -> prune -> fine-tune chain (the `distill`, `prune` and
`finetune` stages) as one call, through the same code: `LEAFYOLO.train` (pipeline.train.run.train_model, with the
teacher's distillation loss) and `prune_model` (pipeline.compress.prune.prune).

`compression_ratio` is the fraction of the student's PARAMETERS KEPT (params after / params before, landed within
0.02 by the pruning search): 0.7 keeps 70 % and removes 30 %. The published material shows
`compression_ratio=0.7` without defining it, next to `prune_model(model, sparsity=0.3)  # Remove 30% of parameters`;
a compression ratio below 1 reads as a size ratio (new over old), while the fraction removed already has its name
(`sparsity`, as `prune_model` and params.yaml's `prune.sparsity` call it). So 0.7 here gives the size of the
pipeline's default `prune.sparsity: 0.3`.
"""

from __future__ import annotations

import copy
import numbers
from dataclasses import replace
from pathlib import Path
from typing import Any

from leafyolo.model import LEAFYOLO
from leafyolo.options import TrainOptions, parse_options
from leafyolo.training import run_dir, teacher_cache_path, train_params
from leafyolo.utils.pruning import as_leafyolo, prune_model
from pipeline.compress.sparsity import MAX_SPARSITY, check_sparsity
from pipeline.model.count import count_params
from pipeline.model.variants import VARIANTS

MIN_RATIO = round(1.0 - MAX_SPARSITY, 6)  # prune() removes at most MAX_SPARSITY of the parameters


def check_ratio(ratio: Any) -> float:
    """`compression_ratio` is 1 - sparsity: a number whose sparsity passes the one sparsity check."""
    try:
        if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or ratio > 1:
            raise ValueError
        check_sparsity(round(1.0 - ratio, 12))
    except ValueError:
        raise ValueError(f"compression_ratio must be a number in [{MIN_RATIO}, 1], the fraction of the student's "
                         f"parameters kept (0.7 keeps 70 % and removes 30 %, like prune_model(sparsity=0.3)); "
                         f"got {ratio!r}") from None
    return float(ratio)


def trained_teacher(teacher: Any, student: LEAFYOLO, kwargs: dict[str, Any]) -> Any:
    """The teacher a `student.train(**kwargs)` call distilled from: a variant name becomes the checkpoint that call
    trained and cached (so the fine-tune step reuses it instead of training another)."""
    if not (isinstance(teacher, str) and teacher in VARIANTS):
        return teacher
    o = parse_options(TrainOptions, kwargs, "train")
    p = replace(train_params(o, o.img_size or student.imgsz), freeze_backbone=False)
    return str(teacher_cache_path(o.project, teacher, student.model.act, str(o.data), p))


def compress_with_distillation(student: LEAFYOLO | str | Path, teacher: Any, compression_ratio: float = 0.7,
                               data: Any = None, epochs: int = 24, finetune_epochs: int = 8,
                               distillation_alpha: float = 0.7, distillation_temperature: float = 2.0,
                               finetune_alpha: float = 0.0, finetune_lr0: float = 0.002, importance: str = "l2",
                               project: str | Path = "runs/compress", name: str | None = None,
                               **train_kwargs: Any) -> LEAFYOLO:
    """Distil `student` from `teacher` for `epochs`, prune it to keep `compression_ratio` of its parameters, then
    fine-tune it for `finetune_epochs` (distilling on when `finetune_alpha` > 0); returns the compressed LEAFYOLO.

    student: a LEAFYOLO, a variant name or a .pt checkpoint (left untouched: a copy is compressed).
    teacher: a LEAFYOLO, a .pt checkpoint, or a variant name (trained first on `data`, cached in
        `<project>/teachers/`, as `LEAFYOLO.train(teacher=...)` does).
    data: the data.yaml (default: the data the student was trained on).
    The defaults are params.yaml's (distill 24 epochs, alpha 0.7, T 2; finetune 8 epochs, lr0 0.002, no warm-up,
    alpha 0). Other keyword arguments (img_size, batch_size, seed, device, lr0, ...) go to both `train` calls;
    the same seed gives the same model. Runs are written to `<project>/<name>/distill` and `.../finetune`
    (name: exp, exp2, ...). `compressed.compress_report` holds each step's metrics.
    """
    ratio = check_ratio(compression_ratio)
    alphas = (distillation_alpha, finetune_alpha)
    if teacher is None or any(isinstance(a, bool) or not isinstance(a, numbers.Real) for a in alphas) \
            or not (0 < distillation_alpha <= 1 and 0 <= finetune_alpha <= 1):
        raise ValueError(f"compress_with_distillation needs a teacher, 0 < distillation_alpha <= 1 and "
                         f"0 <= finetune_alpha <= 1; got teacher={teacher!r}, distillation_alpha="
                         f"{distillation_alpha!r}, finetune_alpha={finetune_alpha!r}")
    source = as_leafyolo(student)
    source.trainable_module("compress_with_distillation")
    model = copy.deepcopy(source)
    data = data or model.data
    if not data:
        raise ValueError("compress_with_distillation needs data='path/to/data.yaml' (the student has no training "
                         "data recorded)")
    out = run_dir(project, name)
    common = {"data": data, "project": str(out.parent), "distillation_temperature": distillation_temperature}
    print(f"[compress 1/3] distilling from {getattr(teacher, 'variant', teacher)} for {epochs} epochs", flush=True)
    distill_kwargs = {"teacher": teacher, "distillation_alpha": distillation_alpha, "epochs": epochs,
                      "name": f"{out.name}/distill", **common, **train_kwargs}
    distilled = model.train(**distill_kwargs)
    teacher = trained_teacher(teacher, model, distill_kwargs)
    print(f"[compress 2/3] pruning to {ratio:.0%} of {count_params(model.model):,} parameters", flush=True)
    pruned = prune_model(model, sparsity=round(1.0 - ratio, 12), importance=importance, inplace=True)
    print(f"[compress 3/3] fine-tuning for {finetune_epochs} epochs", flush=True)
    finetuned = pruned.train(teacher=teacher if finetune_alpha > 0 else None, distillation_alpha=finetune_alpha,
                             epochs=finetune_epochs, name=f"{out.name}/finetune", **common,
                             **{**train_kwargs, "lr0": finetune_lr0, "warmup_epochs": 0.0})
    report = pruned.prune_report
    pruned.compress_report = {"compression_ratio": ratio, "params_kept": report["params_after"] /
                              report["params_before"], "distill": distilled, "prune": report, "finetune": finetuned}
    print(f"compressed to {report['params_after']:,} parameters ({pruned.compress_report['params_kept']:.1%} kept): "
          f"{finetuned['path']}", flush=True)
    return pruned
