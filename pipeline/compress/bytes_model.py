"""The size of a model's full-INT8 TFLite file (names stripped), predicted from its layer shapes before any export,
so the prune stage can aim at a file size (`prune.target_bytes`).

bytes = overhead + conv weights (1 byte each) + per_channel x conv output channels.

Per output channel the file holds an int32 bias and a float32 scale plus an int64 zero point on the weights and on
the bias; the overhead is the graph (operators, options, activation quantisation). Both constants are fitted per
variant by `python -m bench.tflite_bytes` on files converted at several sparsities; `FITTED` records them with the
largest relative error of the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class BytesFit:
    overhead: float
    per_channel: float
    max_rel_error: float  # on the files it was fitted on


# From bench/results/tflite_bytes.md (leafyolo_u pruned at 0 to 0.65 sparsity, 128 px): largest error 0.011 %.
FITTED: dict[str, BytesFit] = {
    "leafyolo_u": BytesFit(overhead=50733.2, per_channel=29.966, max_rel_error=0.00011),
}


def conv_totals(model: nn.Module) -> tuple[int, int]:
    """(weight values, output channels) over every conv and linear layer."""
    weights = channels = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            weights += m.weight.numel()
            channels += m.weight.shape[0]
    return weights, channels


def predicted_tflite_bytes(model: nn.Module, fit: BytesFit) -> float:
    weights, channels = conv_totals(model)
    return fit.overhead + weights + fit.per_channel * channels


def fit_for(variant: str) -> BytesFit:
    if variant not in FITTED:
        raise ValueError(f"prune.target_bytes: no bytes model for {variant!r} (fitted: {sorted(FITTED)}); run "
                         f"`python -m bench.tflite_bytes --variant {variant}` and add its fit to "
                         f"pipeline/compress/bytes_model.py, or prune by prune.sparsity")
    return FITTED[variant]
