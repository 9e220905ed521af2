"""Typed params.yaml sections, one dataclass per DVC stage. Range checks name the bare key; the loader
(`pipeline.config.params.load_section`) prefixes the section, so errors read `prune.sparsity must be ...`.

No field has a default: params.yaml is the one source of every stage setting, and the loader stops a stage whose
key is missing (`gate.min_map50 is missing from params.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.compress.sparsity import check_sparsity
from pipeline.config.train import TrainParams
from pipeline.model.variants import VARIANTS


def _positive(**values: float) -> None:
    for key, value in values.items():
        if value <= 0:
            raise ValueError(f"{key} must be > 0, got {value}")


def _check_thresholds(conf_thres: float, iou_thres: float) -> None:
    """One key per message: the loader prefixes the section, so the error names the key (`web.iou_thres`)."""
    if not 0 <= conf_thres < 1:
        raise ValueError(f"conf_thres must be in [0, 1), got {conf_thres}")
    if not 0 < iou_thres <= 1:
        raise ValueError(f"iou_thres must be in (0, 1], got {iou_thres}")


NO_TEACHER = "none"  # teacher.variant: the chain trains the student alone and the teacher stage trains nothing


def _check_variant(variant: str, *extra: str) -> None:
    if variant not in (*VARIANTS, *extra):
        raise ValueError(f"variant must be one of {sorted(VARIANTS) + list(extra)}, got {variant!r}")


@dataclass(frozen=True)
class DataParams:
    source: str  # 'synthetic', a YOLO data.yaml, or a COCO json
    coco_images: str  # images folder when source is a COCO json
    n_train: int
    n_val: int
    imgsz: int  # size of the generated images
    min_object_px: float  # object diameters of the generated images, log-uniform in this range
    max_object_px: float
    max_clutter: int  # distractors (lines, arcs, blobs, scribbles) per generated image, at most
    max_objects: int  # shapes drawn per generated image, at most (2 at least)
    seed: int
    on_error: str  # or 'skip': bad files are skipped and counted
    dep: str  # the folder DVC hashes as the dataset's input (yours: its root; generated: the generator's code)

    def __post_init__(self) -> None:
        _positive(n_train=self.n_train, n_val=self.n_val)
        if self.imgsz < 32:
            raise ValueError(f"imgsz must be >= 32, got {self.imgsz}")
        if not 2 <= self.min_object_px <= self.imgsz / 2:
            raise ValueError(f"min_object_px must be in [2, imgsz/2 = {self.imgsz / 2:g}], got {self.min_object_px}")
        if not self.min_object_px <= self.max_object_px <= self.imgsz / 2:
            raise ValueError(f"max_object_px must be in [min_object_px = {self.min_object_px:g}, imgsz/2 = "
                             f"{self.imgsz / 2:g}], got {self.max_object_px}")
        if not 0 <= self.max_clutter <= 50:
            raise ValueError(f"max_clutter must be in [0, 50], got {self.max_clutter}")
        if not 2 <= self.max_objects <= 50:
            raise ValueError(f"max_objects must be in [2, 50], got {self.max_objects}")
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {self.on_error!r}")
        if not (self.source == "synthetic" or self.source.endswith((".yaml", ".yml", ".json"))):
            raise ValueError(f"source must be 'synthetic', a data.yaml or a COCO .json, got {self.source!r}")


@dataclass(frozen=True)
class TeacherParams:
    variant: str  # or 'none': no teacher (distill.alpha and finetune.alpha must then be 0)
    weights: str  # a user checkpoint: skip training and take it
    dep: str  # the file or folder DVC hashes as the teacher's input (yours: the checkpoint or its folder)
    act: str
    train: TrainParams

    def __post_init__(self) -> None:
        _check_variant(self.variant, NO_TEACHER)

    @property
    def none(self) -> bool:
        """No teacher at all: neither trained (variant 'none') nor given (`weights`)."""
        return self.variant == NO_TEACHER and not self.weights


@dataclass(frozen=True)
class DistillParams:
    variant: str
    act: str
    alpha: float
    temperature: float
    cls_weight: float
    feat_weight: float
    min_teacher_map50: float  # with alpha > 0, a teacher scoring under this val mAP50 stops the stage (0: no check)
    train: TrainParams

    def __post_init__(self) -> None:
        _check_variant(self.variant)
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if not 0.0 <= self.min_teacher_map50 <= 1.0:
            raise ValueError(f"min_teacher_map50 must be in [0, 1], got {self.min_teacher_map50}")


@dataclass(frozen=True)
class PruneParams:
    sparsity: float  # fraction of the student's parameters removed
    importance: str
    target_bytes: int  # > 0: prune to this INT8 TFLite size instead (prune.sparsity is then ignored)
    round_to: int  # every pruned group keeps a multiple of this many channels (SIMD int8 kernels work in 8s); 1: any

    def __post_init__(self) -> None:
        check_sparsity(self.sparsity, "sparsity")  # load_section prefixes the section: prune.sparsity
        if not 1 <= self.round_to <= 64:
            raise ValueError(f"round_to must be in [1, 64] (1: any channel count), got {self.round_to}")
        if self.target_bytes < 0:
            raise ValueError(f"target_bytes must be 0 (prune by sparsity) or a file size in bytes, got {self.target_bytes}")
        if self.importance not in ("l1", "l2"):
            raise ValueError(f"importance must be 'l1' or 'l2', got {self.importance!r}")


# Weight scales of the INT8 TFLite: one per output channel of each filter, or one per filter (onnx2tf -qt). Per-tensor
# files carry no per-channel tables (bench/results/quant_granularity.md measures the bytes and the mAP50 of both).
QUANT_TYPES = ("per-tensor", "per-channel")


@dataclass(frozen=True)
class TfliteParams:
    quant_type: str  # one of QUANT_TYPES

    def __post_init__(self) -> None:
        if self.quant_type not in QUANT_TYPES:
            raise ValueError(f"quant_type must be one of {QUANT_TYPES}, got {self.quant_type!r}")


@dataclass(frozen=True)
class FinetuneParams:
    alpha: float  # > 0 keeps distilling from the teacher while fine-tuning
    temperature: float
    train: TrainParams

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")


@dataclass(frozen=True)
class CalibrateParams:
    subset_size: int
    seed: int
    preset: str

    def __post_init__(self) -> None:
        if self.subset_size <= 0:
            raise ValueError(f"subset_size must be > 0, got {self.subset_size}")
        if self.preset not in ("mixed", "performance"):
            raise ValueError(f"preset must be 'mixed' or 'performance', got {self.preset!r}")


def calibration_size(subset_size: int, n_train: int) -> int:
    """The calibration images actually drawn: `calibrate.subset_size`, at most the whole training split."""
    return min(subset_size, n_train)


@dataclass(frozen=True)
class OnnxParams:
    opset: int
    simplify: bool

    def __post_init__(self) -> None:
        if not 11 <= self.opset <= 21:
            raise ValueError(f"opset must be in [11, 21], got {self.opset}")


@dataclass(frozen=True)
class WebParams:
    conf_thres: float  # the page's starting score threshold (a person can change it there)
    iou_thres: float  # the page's starting NMS IoU threshold
    max_det: int

    def __post_init__(self) -> None:
        _check_thresholds(self.conf_thres, self.iou_thres)
        if self.max_det <= 0:
            raise ValueError(f"max_det must be > 0, got {self.max_det}")


@dataclass(frozen=True)
class EvaluateParams:
    conf_thres: float
    iou_thres: float
    latency_runs: int
    latency_warmup: int
    bootstrap_resamples: int  # resamples of the val images behind each 95 % interval (0: no intervals)
    bootstrap_seed: int

    def __post_init__(self) -> None:
        _check_thresholds(self.conf_thres, self.iou_thres)
        _positive(latency_runs=self.latency_runs)
        if self.latency_warmup < 0:
            raise ValueError(f"latency_warmup must be >= 0, got {self.latency_warmup}")
        if self.bootstrap_resamples != 0 and not 100 <= self.bootstrap_resamples <= 100_000:
            raise ValueError(f"bootstrap_resamples must be 0 (no intervals) or in [100, 100000], "
                             f"got {self.bootstrap_resamples}")


@dataclass(frozen=True)
class PlotsParams:
    n_images: int  # first val images the final INT8 model's detections are drawn on
    columns: int  # panels per row of that grid
    conf_thres: float
    iou_thres: float

    def __post_init__(self) -> None:
        if not 1 <= self.n_images <= 64:
            raise ValueError(f"n_images must be in [1, 64], got {self.n_images}")
        _positive(columns=self.columns)
        _check_thresholds(self.conf_thres, self.iou_thres)


@dataclass(frozen=True)
class GateParams:
    max_bytes: int
    min_map50: float
    max_int8_drop: float
    min_int8_retention: float  # INT8 mAP50 must keep at least this fraction of the FP32 fine-tuned mAP50
    max_arena_bytes: int  # TensorFlow Lite Micro tensor arena the INT8 TFLite may need at most

    def __post_init__(self) -> None:
        for key in ("max_bytes", "max_arena_bytes"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)}")
        for key in ("min_map50", "max_int8_drop", "min_int8_retention"):
            if not 0 <= getattr(self, key) <= 1:
                raise ValueError(f"{key} must be in [0, 1], got {getattr(self, key)}")
