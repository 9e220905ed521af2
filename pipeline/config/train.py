"""Typed training settings (the defaults are the published LEAF-YOLO Ultra recipe)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipeline.config.augment import AugmentParams

OPTIMIZERS = ("SGD", "AdamW")


@dataclass(frozen=True)
class TrainParams:
    epochs: int = 300
    min_steps: int = 0  # at least this many optimizer steps: a small dataset gets more epochs (whole epochs)
    batch_size: int = 16
    imgsz: int = 320
    optimizer: str = "SGD"
    lr0: float = 0.01
    lrf: float = 0.01  # final lr = lr0 * lrf (cosine)
    momentum: float = 0.937
    weight_decay: float = 0.0005
    warmup_epochs: float = 3.0
    ema_decay: float = 0.9999
    ema_tau: float = 2000.0  # optimizer steps over which the EMA decay ramps up from 0
    box_weight: float = 7.5
    cls_weight: float = 1.0
    seed: int = 0
    workers: int = 0
    val_every: int = 0  # 0: validate after the last epoch only
    amp: bool = True  # used on CUDA only
    freeze_backbone: bool = False
    augment: AugmentParams = field(default_factory=AugmentParams)

    def __post_init__(self) -> None:
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "imgsz": self.imgsz, "lr0": self.lr0}
        for key, value in positive.items():
            if value <= 0:
                raise ValueError(f"{key} must be > 0, got {value}")
        if self.imgsz % 32:
            raise ValueError(f"imgsz must be a multiple of 32, got {self.imgsz}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not 0 < self.lrf <= 1:
            raise ValueError(f"lrf must be in (0, 1], got {self.lrf}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        non_negative = {"min_steps": self.min_steps, "weight_decay": self.weight_decay,
                        "warmup_epochs": self.warmup_epochs,
                        "workers": self.workers, "val_every": self.val_every}
        for key, value in non_negative.items():
            if value < 0:
                raise ValueError(f"{key} must be >= 0, got {value}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.ema_tau <= 0:
            raise ValueError(f"ema_tau must be > 0, got {self.ema_tau}")


def planned_epochs(p: TrainParams, steps_per_epoch: int) -> int:
    """Epochs a run takes at `steps_per_epoch` optimizer steps an epoch: `p.epochs`, raised to the fewest whole
    epochs that make at least `p.min_steps` steps. A training section sized by `min_steps` gives a 124-image
    dataset (3 steps an epoch at batch 32) as many optimizer steps as a 1,000-image one, not a twelfth of them."""
    if steps_per_epoch <= 0:
        raise ValueError(f"steps_per_epoch must be > 0, got {steps_per_epoch}")
    return max(p.epochs, math.ceil(p.min_steps / steps_per_epoch))


def budget_text(p: TrainParams) -> str:
    """`12 epochs, at least 372 optimizer steps`: the budget as a stage's progress line states it."""
    return f"{p.epochs} epochs" + (f", at least {p.min_steps} optimizer steps" if p.min_steps else "")
