"""Cross-stage checks, run by the data stage and again at the start of each training stage: what a later stage
needs from the params and the data is checked before any training, not 25 minutes into the run.

- every section of params.yaml parses, every key present (a missing key anywhere stops the data stage);
- with no teacher (`teacher.variant: none`), neither distill nor finetune distills (alpha 0);
- `teacher.weights` lies inside `teacher.dep` (so DVC re-runs the chain when the file changes) and its class
  count matches the data's;
- a calibration subset larger than the training split is resolved: the whole split is used, and said so;
- `prune.target_bytes` has a bytes model for the student's variant and `tflite.quant_type`;
- the machine has every Python package the later stages import and the `web` stage's npm files
  (`pipeline/stage/environment.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config.params import ParamsError, read_params, section_from
from pipeline.config.stages import (
    CalibrateParams,
    DataParams,
    DistillParams,
    EvaluateParams,
    FinetuneParams,
    GateParams,
    OnnxParams,
    PlotsParams,
    PruneParams,
    TeacherParams,
    TfliteParams,
    WebParams,
    calibration_size,
)
from pipeline.stage.environment import WEB_LOCK, check_environment

SECTIONS: dict[str, type] = {
    "data": DataParams, "teacher": TeacherParams, "distill": DistillParams, "prune": PruneParams,
    "finetune": FinetuneParams, "calibrate": CalibrateParams, "onnx": OnnxParams, "tflite": TfliteParams,
    "evaluate": EvaluateParams, "gate": GateParams, "web": WebParams, "plots": PlotsParams,
}


@dataclass(frozen=True)
class ChainParams:
    data: DataParams
    teacher: TeacherParams
    distill: DistillParams
    prune: PruneParams
    finetune: FinetuneParams
    calibrate: CalibrateParams
    onnx: OnnxParams
    tflite: TfliteParams
    evaluate: EvaluateParams
    gate: GateParams
    web: WebParams
    plots: PlotsParams


def load_chain(path: str | Path) -> ChainParams:
    """Every section of the params file, every key required."""
    params = read_params(path)
    return ChainParams(**{name: section_from(params, path, name, cls) for name, cls in SECTIONS.items()})


def check_teacher_weights(p: TeacherParams, nc: int | None, data_name: str) -> None:
    """A user teacher must be inside `teacher.dep`, load, and predict the data's classes."""
    if not p.weights:
        return
    from pipeline.data.inputs import check_dep_covers
    from pipeline.io.checkpoint import read_checkpoint

    check_dep_covers(p.dep, {"teacher.weights": Path(p.weights)}, "teacher.dep")
    ckpt = read_checkpoint(p.weights)
    if nc is not None and int(ckpt["nc"]) != nc:
        raise ParamsError(f"teacher.weights {p.weights} predicts nc={ckpt['nc']} classes, but {data_name} has "
                          f"nc={nc}; expected a teacher trained on these classes")


def check_teacher_needed(chain: ChainParams) -> None:
    """With no teacher (`teacher.variant: none`, no `teacher.weights`) nothing may distill from one."""
    if not chain.teacher.none:
        return
    using = [f"{name}.alpha is {p.alpha:g}" for name, p in (("distill", chain.distill), ("finetune", chain.finetune))
             if p.alpha > 0]
    if using:
        raise ParamsError(f"teacher.variant is 'none' (no teacher is trained), but {' and '.join(using)}: set "
                          "them to 0 to train the student alone, or name a teacher (teacher.variant: leafyolo_s, or "
                          "teacher.weights)")


def check_chain(params_path: str | Path, data_yaml: str | Path | None = None,
                log: Callable[[str], None] = print, web_lock: str | Path = WEB_LOCK) -> dict[str, Any]:
    """Run every check that needs only params (and the dataset, once `data_yaml` exists) and the machine's
    environment (`web_lock`: the web stage's package-lock.json, relative to the project root where DVC runs the
    stages); returns notes for the metrics. Raises ParamsError / ValueError naming the key and what was expected,
    EnvironmentProblem naming what to install."""
    chain = load_chain(params_path)
    check_environment(web_lock)
    notes: dict[str, Any] = {}
    nc, data_name = None, "the dataset"
    if data_yaml is not None:
        from pipeline.data.data_yaml import load_data_yaml
        from pipeline.data.labels import list_images

        cfg = load_data_yaml(data_yaml)
        nc, data_name = cfg.nc, str(data_yaml)
        n_train = len(list_images(cfg.train))
        used = calibration_size(chain.calibrate.subset_size, n_train)
        if used < chain.calibrate.subset_size:
            log(f"note: calibrate.subset_size={chain.calibrate.subset_size} is larger than the training split "
                f"({n_train} images): calibration will use all {n_train}")
        notes["calibration_images"] = used
    check_teacher_needed(chain)
    check_teacher_weights(chain.teacher, nc, data_name)
    if chain.prune.target_bytes:
        from pipeline.compress.bytes_model import fit_for

        fit_for(chain.distill.variant, chain.tflite.quant_type)  # the prune stage needs it, 15 minutes from now
    return notes
