"""The size of a model's full-INT8 TFLite file (names stripped), predicted from its layer shapes before any export,
so the prune stage can aim at a file size (`prune.target_bytes`).

bytes = overhead + conv weights (1 byte each) + per_channel x conv output channels.

Per output channel the file holds an int32 bias and, with per-channel weight scales, a float32 scale on the weights
and another on the bias (the int64 zero points are shared arrays); the overhead is the graph (operators, options,
activation quantisation). Both constants are fitted per variant and `tflite.quant_type` by
`python -m bench.tflite_bytes` on files converted at several sparsities; `FITTED` records them with the largest
relative error of the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pipeline.model.modes import eval_mode


@dataclass(frozen=True)
class BytesFit:
    overhead: float
    per_channel: float
    max_rel_error: float  # on the files it was fitted on
    # per-channel scales: the head levels' folded copies of a shared conv differ by a per-channel factor only, so
    # their int8 weights are identical and the stripped file stores them once (their scales once per level)
    shared_weights_once: bool = False


# From bench/results/tflite_bytes.md (leafyolo_u pruned at 0 to 0.65 sparsity, 128 px): largest errors 0.04 % and 0.16 %.
FITTED: dict[tuple[str, str], BytesFit] = {
    ("leafyolo_u", "per-tensor"): BytesFit(overhead=34624.4, per_channel=3.724, max_rel_error=0.00035),
    ("leafyolo_u", "per-channel"): BytesFit(overhead=35693.1, per_channel=13.229, max_rel_error=0.00157,
                                            shared_weights_once=True),
}


def conv_totals(model: nn.Module, shared_weights_once: bool = False, imgsz: int = 64) -> tuple[int, int]:
    """(weight values, output channels) over every conv and linear layer call, as the exported file holds them: the
    export traces calls, so a layer called on several paths (the head's shared convs and output convs, once per
    pyramid level) has one copy per call, each with its own folded BatchNorm; `shared_weights_once` counts its weight
    values once. Found by one forward pass of an `imgsz` x `imgsz` image (a multiple of the largest stride). The
    zero taps the TFLite conversion adds to the kernel of the convolution that set the arena
    (pipeline/export/graph_prep.py, rewrite 4) are left to the fitted overhead."""
    weights = channels = 0
    seen: set[int] = set()

    def count(m: nn.Module, *_: object) -> None:
        nonlocal weights, channels
        if not (shared_weights_once and id(m) in seen):
            weights += m.weight.numel()
        seen.add(id(m))
        channels += m.weight.shape[0]

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    hooks = [m.register_forward_hook(count) for m in layers]
    try:
        in_ch = next(m for m in layers if isinstance(m, nn.Conv2d)).in_channels
        param = next(model.parameters())
        with eval_mode(model), torch.no_grad():
            model(torch.zeros(1, in_ch, imgsz, imgsz, dtype=param.dtype, device=param.device))
    finally:
        for h in hooks:
            h.remove()
    return weights, channels


def predicted_tflite_bytes(model: nn.Module, fit: BytesFit) -> float:
    weights, channels = conv_totals(model, fit.shared_weights_once)
    return fit.overhead + weights + fit.per_channel * channels


def fit_for(variant: str, quant_type: str) -> BytesFit:
    if (variant, quant_type) not in FITTED:
        raise ValueError(f"prune.target_bytes: no bytes model for {variant!r} with tflite.quant_type={quant_type!r} "
                         f"(fitted: {sorted(FITTED)}); run `python -m bench.tflite_bytes --model <a {variant} "
                         f"checkpoint> --quant-types {quant_type}` and add its fit to pipeline/compress/bytes_model.py, "
                         f"or prune by prune.sparsity")
    return FITTED[(variant, quant_type)]
