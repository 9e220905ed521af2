"""IoU-family measures for xyxy boxes (broadcasting over leading dimensions)."""

from __future__ import annotations

import math

import torch


def portable_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt(x) for x >= 0 with the same bits on every x86-64 CPU: `torch.sqrt` runs MKL's vector math, whose
    portable branch differs between CPUs (pipeline/common/kernels.py); `rsqrt` and a division are ATen's own,
    exactly rounded operations (two roundings: within 2 ulp of sqrt); 0 gives 0."""
    return torch.rsqrt(x).reciprocal()


def power(x: torch.Tensor, exponent: float) -> torch.Tensor:
    """`x ** exponent` for x >= 0, by exactly rounded operations where the exponent allows it: square roots and
    products for multiples of 0.5 up to 16, `torch.pow` otherwise.

    Why not `torch.pow` always: on this CPU build, the first `pow(x, 0.5)` of a process sometimes takes another
    kernel than the later calls (1-ulp differences in every element), which made the label assignment, and so the
    whole training run, differ between two runs of the same params. Square roots (`portable_sqrt`) and products
    give the same bits every time, on every path.
    """
    twice = 2 * exponent
    if exponent < 0 or twice != int(twice) or exponent > 16:
        return x.pow(exponent)
    whole, half = divmod(int(twice), 2)
    out = portable_sqrt(x) if half else torch.ones_like(x)
    base = x
    while whole:  # square-and-multiply: a fixed sequence of exactly rounded products
        if whole & 1:
            out = out * base
        whole >>= 1
        if whole:
            base = base * base
    return out


def box_iou_pairwise(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """IoU of broadcast-matched boxes a[..., 4] and b[..., 4] (xyxy)."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    return inter / (area_a + area_b - inter + eps)


def box_ciou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Complete IoU (Zheng et al. 2020) of matched boxes: IoU minus centre-distance and aspect penalties."""
    iou = box_iou_pairwise(a, b, eps)
    enclose_wh = torch.maximum(a[..., 2:], b[..., 2:]) - torch.minimum(a[..., :2], b[..., :2])
    c2 = enclose_wh.pow(2).sum(-1) + eps
    centre_a = (a[..., :2] + a[..., 2:]) / 2
    centre_b = (b[..., :2] + b[..., 2:]) / 2
    rho2 = (centre_a - centre_b).pow(2).sum(-1)
    wa, ha = (a[..., 2] - a[..., 0]).clamp(min=eps), (a[..., 3] - a[..., 1]).clamp(min=eps)
    wb, hb = (b[..., 2] - b[..., 0]).clamp(min=eps), (b[..., 3] - b[..., 1]).clamp(min=eps)
    v = (4 / math.pi**2) * (torch.atan2(wb, hb) - torch.atan2(wa, ha)).pow(2)  # atan2: ATen's, not MKL's atan
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - rho2 / c2 - alpha * v
