"""Fold every BatchNorm2d into the Conv2d before it, in place, for inference (outputs unchanged within ~1e-6).

`ConvBNAct` is `Sequential(conv, bn[, act])`: the fused conv takes the conv's place, the BatchNorm becomes
`Identity`, and the activation stays where it is (it is applied to the fused conv's output, so the block
computes act(conv'(x)) with conv' = conv followed by the BatchNorm's affine map).
A fused model has no BatchNorm left: it can be run and exported, but not trained, pruned or saved as a
checkpoint (`pipeline.io.model_loader.load_model` rebuilds the unfused architecture).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fuse_conv_bn(model: nn.Module) -> int:
    """Fold each `Conv2d -> BatchNorm2d` pair that sits consecutively in an `nn.Sequential`; returns the count."""
    was_training = model.training
    model.eval()
    fused = 0
    with torch.no_grad():
        for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
            for i in range(len(seq) - 1):
                conv, bn = seq[i], seq[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    seq[i] = fuse_conv_bn_eval(conv, bn)
                    seq[i + 1] = nn.Identity()
                    fused += 1
    model.train(was_training)
    return fused


def is_fused(model: nn.Module) -> bool:
    """True when the model has convolutions but no BatchNorm left (it went through `fuse_conv_bn`)."""
    mods = list(model.modules())
    return any(isinstance(m, nn.Conv2d) for m in mods) and not any(isinstance(m, nn.BatchNorm2d) for m in mods)
