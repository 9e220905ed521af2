"""The accepted keyword arguments of `LEAFYOLO.train/predict/val/export`: defaults, types and help in one place.

The Python API checks its keyword arguments against these dataclasses (an unknown one fails with the
accepted list) and the CLI turns every field into a `--flag` with the same help text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from pipeline.config.augment import AugmentParams
from pipeline.config.params import ParamsError, from_dict
from pipeline.config.train import TrainParams

DEFAULT_IMGSZ = TrainParams.imgsz  # a new model's image size until it is trained at another one


def opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainOptions:
    data: Any = opt(None, "YOLO data.yaml to train on (required)")
    epochs: int = opt(TrainParams.epochs, "number of epochs")
    batch_size: int = opt(TrainParams.batch_size, "images per batch")
    img_size: int | None = opt(None, f"square training size, a multiple of 32 (default: the model's size, "
                                     f"{DEFAULT_IMGSZ} for a new model)")
    teacher: Any = opt(None, "distil from a teacher: a variant name (leafyolo_n, leafyolo_s: trained first on the "
                             "same data with the same settings, or reused from <project>/teachers/), or a .pt "
                             "checkpoint; none to train without a teacher")
    distillation_alpha: float = opt(0.7, "loss = alpha * distillation + (1 - alpha) * detection (with a teacher)")
    distillation_temperature: float = opt(2.0, "softening temperature of the distillation losses")
    augment_strength: float = opt(1.0, "scales the augmentation gains (hsv, translate, scale, mosaic, mixup, "
                                       "copy-paste); 1 = published recipe, 0 = no augmentation at all")
    freeze_backbone: bool = opt(False, "train only the neck and head (the backbone keeps its weights)")
    device: str | None = opt(None, "'cpu', a CUDA index such as '0', or 'cuda:1' (default: CUDA 0 when "
                                   "available, else CPU)")
    optimizer: str = opt(TrainParams.optimizer, "SGD or AdamW")
    lr0: float = opt(TrainParams.lr0, "initial learning rate (after warm-up)")
    lrf: float = opt(TrainParams.lrf, "final learning rate = lr0 * lrf (cosine decay)")
    momentum: float = opt(TrainParams.momentum, "SGD momentum / AdamW beta1")
    weight_decay: float = opt(TrainParams.weight_decay, "weight decay of the conv weights")
    warmup_epochs: float = opt(TrainParams.warmup_epochs, "linear learning-rate warm-up, in epochs")
    ema_decay: float = opt(TrainParams.ema_decay, "decay of the weight moving average that is saved")
    ema_tau: float = opt(TrainParams.ema_tau, "optimizer steps over which the moving average's decay ramps up")
    box_weight: float = opt(TrainParams.box_weight, "weight of the box (CIoU) loss")
    cls_weight: float = opt(TrainParams.cls_weight, "weight of the classification (BCE) loss")
    seed: int = opt(TrainParams.seed, "random seed")
    workers: int = opt(TrainParams.workers, "data-loader worker processes")
    min_steps: int = opt(TrainParams.min_steps, "at least this many optimizer steps: epochs are added for a small "
                                                "dataset (0: just epochs)")
    val_every: int = opt(TrainParams.val_every, "validate every N epochs (0: after the last epoch only)")
    amp: bool = opt(TrainParams.amp, "mixed precision (CUDA only)")
    project: Any = opt("runs/train", "folder of the training runs")
    name: str | None = opt(None, "run folder inside project (default: exp, exp2, ...); an interrupted run "
                                 "with the same name and settings resumes")


@dataclass(frozen=True)
class PredictOptions:
    conf: float = opt(0.25, "keep detections with a score above this")
    iou: float = opt(0.45, "NMS IoU threshold (per class)")
    img_size: int | None = opt(None, "inference size (default: the model's size)")
    max_det: int = opt(300, "at most this many detections per image")
    batch_size: int = opt(1, "images per forward pass")
    device: str | None = opt(None, "'cpu' or a CUDA device for .pt models (default: CPU)")


@dataclass(frozen=True)
class ValOptions:
    data: Any = opt(None, "YOLO data.yaml (default: the data the model was trained on)")
    split: str = opt("val", "split to evaluate: val or train")
    img_size: int | None = opt(None, "evaluation size (default: the model's size)")
    batch_size: int = opt(8, "images per forward pass")
    conf: float = opt(0.001, "score threshold before NMS (low, as for mAP)")
    iou: float = opt(0.6, "NMS IoU threshold")
    device: str | None = opt(None, "'cpu' or a CUDA device for .pt models (default: CPU)")


@dataclass(frozen=True)
class ExportOptions:
    format: str = opt("onnx", "onnx, tflite or torchscript (torch.jit.script, FP32, any batch and size)")
    img_size: int | None = opt(None, "fixed input size (default: the model's size)")
    file: Any = opt(None, "output file (default: beside the checkpoint, else runs/export/)")
    opset_version: int = opt(13, "ONNX opset (11-21)")
    simplify: bool = opt(True, "run onnxsim on the ONNX graph")
    dynamic: bool = opt(False, "ONNX with a dynamic batch axis (TFLite: batch 1)")
    fp16: bool = opt(False, "float16 weights: ONNX with FP32 input/output, or float16 TFLite")
    int8: bool = opt(False, "INT8: full-integer TFLite (int8 input/output) or NNCF QDQ ONNX, calibrated on data")
    data: Any = opt(None, "data.yaml whose train split calibrates INT8 (default: the training data)")
    calib_images: int = opt(128, "number of calibration images (at most the train split)")
    quant_type: str = opt("per-tensor", "INT8 TFLite weight scales: per-tensor (smaller file) or per-channel")
    include_nms: bool = opt(False, "ONNX FP32 only: decode + NMS in the graph, output detections [K, 7] = "
                                   "(batch, x1, y1, x2, y2, score, class)")
    nms_conf: float = opt(0.25, "score threshold of the in-graph NMS")
    nms_iou: float = opt(0.45, "IoU threshold of the in-graph NMS")
    max_det: int = opt(300, "in-graph NMS: at most this many boxes per class and image")


def options_doc(cls: type) -> str:
    """The "Keyword arguments" section appended to the docstrings of the LEAFYOLO verbs (help(LEAFYOLO.train))."""
    lines = ["", "        Keyword arguments:"]  # indented like the method docstrings it is appended to
    lines += [f"            {f.name} (default {f.default!r}): {f.metadata['help']}" for f in fields(cls)]
    return "\n".join(lines) + "\n"


def accepted(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


def parse_options(cls: type, kwargs: dict[str, Any], verb: str) -> Any:
    """Build `cls` from keyword arguments; an unknown name or a wrong type raises ValueError naming it."""
    unknown = sorted(set(kwargs) - set(accepted(cls)))
    if unknown:
        raise ValueError(f"LEAFYOLO.{verb}() got unknown argument(s) {unknown}; accepted: {', '.join(accepted(cls))}")
    plain = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in kwargs.items()}
    try:
        return from_dict(cls, plain, verb)
    except ParamsError as exc:
        raise ValueError(f"LEAFYOLO.{verb}(): {exc}") from None


# augment_strength s scales these gains (clipped to each key's valid range); fliplr stays 0.5 unless s == 0.
SCALED_AUGMENT_KEYS = ("hsv_h", "hsv_s", "hsv_v", "translate", "scale", "mosaic", "mixup", "copy_paste")
MAX_SCALE_GAIN = 0.9


def augment_for_strength(strength: float, base: AugmentParams | None = None) -> AugmentParams:
    """AugmentParams with every gain of `base` (default: the published recipe) multiplied by `strength` >= 0.

    hsv_h/s/v, translate, mosaic, mixup and copy_paste are clipped to [0, 1], scale to [0, 0.9]; fliplr keeps
    its value (0.5) for any strength > 0 and is 0 at strength 0, so strength 0 turns augmentation off.
    """
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not strength >= 0:
        raise ValueError(f"augment_strength must be a number >= 0, got {strength!r}")
    base = base or AugmentParams()
    values = {k: min(getattr(base, k) * strength, MAX_SCALE_GAIN if k == "scale" else 1.0) for k in SCALED_AUGMENT_KEYS}
    return AugmentParams(**values, fliplr=base.fliplr if strength > 0 else 0.0)
