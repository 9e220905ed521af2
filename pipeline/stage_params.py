"""Typed params.yaml sections, one dataclass per DVC stage. Range checks name the bare key; the loader
(`pipeline.config.load_section`) prefixes the section, so errors read `prune.sparsity must be ...`."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.model.variants import VARIANTS
from pipeline.train_params import TrainParams


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")


@dataclass(frozen=True)
class DataParams:
    source: str = "synthetic"  # 'synthetic', a YOLO data.yaml, or a COCO json
    coco_images: str = ""  # images folder when source is a COCO json
    n_train: int = 480
    n_val: int = 120
    imgsz: int = 192  # size of the generated images
    min_object_px: float = 16.0  # object diameters of the generated images, log-uniform in this range
    max_object_px: float = 64.0
    seed: int = 0
    on_error: str = "raise"  # or 'skip': bad files are skipped and counted

    def __post_init__(self) -> None:
        if self.n_train <= 0 or self.n_val <= 0:
            raise ValueError(f"n_train and n_val must be > 0, got {self.n_train}, {self.n_val}")
        if self.imgsz < 32:
            raise ValueError(f"imgsz must be >= 32, got {self.imgsz}")
        if not 2 <= self.min_object_px <= self.max_object_px <= self.imgsz / 2:
            raise ValueError(f"min_object_px and max_object_px must satisfy 2 <= min <= max <= imgsz/2, "
                             f"got {self.min_object_px}, {self.max_object_px}")
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {self.on_error!r}")
        if not (self.source == "synthetic" or self.source.endswith((".yaml", ".yml", ".json"))):
            raise ValueError(f"source must be 'synthetic', a data.yaml or a COCO .json, got {self.source!r}")


@dataclass(frozen=True)
class TeacherParams:
    variant: str = "leafyolo_s"
    weights: str = ""  # a user checkpoint: skip training and take it
    act: str = "relu"
    train: TrainParams = field(default_factory=TrainParams)

    def __post_init__(self) -> None:
        _check_variant(self.variant)


@dataclass(frozen=True)
class DistillParams:
    variant: str = "leafyolo_u"
    act: str = "relu"
    alpha: float = 0.7
    temperature: float = 2.0
    cls_weight: float = 1.0
    feat_weight: float = 1.0
    train: TrainParams = field(default_factory=TrainParams)

    def __post_init__(self) -> None:
        _check_variant(self.variant)
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")


@dataclass(frozen=True)
class PruneParams:
    sparsity: float = 0.3  # fraction of the student's parameters removed
    importance: str = "l2"

    def __post_init__(self) -> None:
        if not 0.0 <= self.sparsity <= 0.95:
            raise ValueError(f"sparsity must be in [0, 0.95], got {self.sparsity}")
        if self.importance not in ("l1", "l2"):
            raise ValueError(f"importance must be 'l1' or 'l2', got {self.importance!r}")


@dataclass(frozen=True)
class FinetuneParams:
    alpha: float = 0.0  # > 0 keeps distilling from the teacher while fine-tuning
    temperature: float = 2.0
    train: TrainParams = field(default_factory=TrainParams)

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")


@dataclass(frozen=True)
class CalibrateParams:
    subset_size: int = 128
    seed: int = 0
    preset: str = "mixed"

    def __post_init__(self) -> None:
        if self.subset_size <= 0:
            raise ValueError(f"subset_size must be > 0, got {self.subset_size}")
        if self.preset not in ("mixed", "performance"):
            raise ValueError(f"preset must be 'mixed' or 'performance', got {self.preset!r}")


@dataclass(frozen=True)
class OnnxParams:
    opset: int = 13
    simplify: bool = True

    def __post_init__(self) -> None:
        if not 11 <= self.opset <= 21:
            raise ValueError(f"opset must be in [11, 21], got {self.opset}")


@dataclass(frozen=True)
class EvaluateParams:
    conf_thres: float = 0.001
    iou_thres: float = 0.6
    latency_runs: int = 30
    latency_warmup: int = 5

    def __post_init__(self) -> None:
        if not 0 <= self.conf_thres < 1 or not 0 < self.iou_thres <= 1:
            raise ValueError(f"conf_thres must be in [0, 1) and iou_thres in (0, 1], "
                             f"got {self.conf_thres}, {self.iou_thres}")
        if self.latency_runs <= 0 or self.latency_warmup < 0:
            raise ValueError("latency_runs must be > 0 and latency_warmup >= 0")


@dataclass(frozen=True)
class GateParams:
    max_bytes: int = 1_000_000
    min_map50: float = 0.3
    max_int8_drop: float = 0.05

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {self.max_bytes}")
        if not 0 <= self.min_map50 <= 1 or not 0 <= self.max_int8_drop <= 1:
            raise ValueError(f"min_map50 and max_int8_drop must be in [0, 1], got {self.min_map50}, "
                             f"{self.max_int8_drop}")
