"""Width and depth of each LEAF-YOLO variant."""

from __future__ import annotations

from dataclasses import dataclass

STRIDES: tuple[int, ...] = (8, 16, 32)  # output strides of the three pyramid levels, every variant


@dataclass(frozen=True)
class VariantSpec:
    widths: tuple[int, int, int, int, int]  # stem, stride 4, P3, P4, P5
    depths: tuple[int, int, int]  # Ghost bottlenecks in P3, P4, P5 stages
    neck_width: int
    neck_depth: int
    head_depth: int
    stem_ir: bool = True  # an inverted residual at stride 4 (the stem's last block; the costliest at 320 px+)
    expand: float = 3.0  # expansion of the stride-8/16/32 inverted residuals


VARIANTS: dict[str, VariantSpec] = {
    # the student ("Ultra"): <= 800K parameters at nc=80
    "leafyolo_u": VariantSpec((16, 32, 64, 128, 224), (1, 1, 1), neck_width=72, neck_depth=1, head_depth=1),
    "leafyolo_n": VariantSpec((16, 32, 72, 160, 288), (1, 2, 1), neck_width=96, neck_depth=1, head_depth=1),
    # the teacher
    "leafyolo_s": VariantSpec((24, 48, 112, 224, 400), (2, 2, 2), neck_width=128, neck_depth=2, head_depth=2),
}


def get_variant(name: str) -> VariantSpec:
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; expected one of {sorted(VARIANTS)}")
    return VARIANTS[name]
