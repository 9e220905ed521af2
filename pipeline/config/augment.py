"""Typed augmentation settings (the `augment:` block of every training section)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

_PROBS = ("fliplr", "mosaic", "mixup", "copy_paste")
_GAINS = ("hsv_h", "hsv_s", "hsv_v", "translate")


@dataclass(frozen=True)
class AugmentParams:
    """Augmentation settings; defaults are the published LEAF-YOLO Ultra values."""

    hsv_h: float = 0.015
    hsv_s: float = 0.7
    hsv_v: float = 0.4
    translate: float = 0.1
    scale: float = 0.5
    fliplr: float = 0.5
    mosaic: float = 1.0
    mixup: float = 0.0
    copy_paste: float = 0.1

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"augment key '{f.name}': expected a number, got {v!r}")
            object.__setattr__(self, f.name, float(v))
            what = "a probability in [0, 1]" if f.name in _PROBS else "a fraction in [0, 1]"
            if f.name in _PROBS + _GAINS and not 0.0 <= v <= 1.0:
                raise ValueError(f"augment key '{f.name}': expected {what}, got {v!r}")
        if not 0.0 <= self.scale < 1.0:
            raise ValueError(f"augment key 'scale': expected a gain in [0, 1), got {self.scale!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AugmentParams:
        """Build from a params.yaml section; unknown keys raise naming the key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"augment: unknown key(s) {unknown}; expected some of {sorted(known)}")
        return cls(**dict(d))
