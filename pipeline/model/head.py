"""Anchor-free detection head whose weights are shared across the three scales.

Box and class outputs are separate tensors of different shapes (a shared INT8 scale for pixel distances
and probabilities would destroy the scores). Decoding and NMS stay outside (`pipeline/infer/postprocess.py`).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from pipeline.model.blocks import DWSeparable
from pipeline.model.variants import STRIDES


class Scale(nn.Module):
    """A learnable scalar per pyramid level (FCOS), so one shared box branch serves every stride."""

    def __init__(self, value: float = 1.0):
        super().__init__()
        self.value = nn.Parameter(torch.tensor(float(value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.value


class LevelPath(nn.Module):
    """What one pyramid level runs: the head's shared stem and branches, with this level's own BatchNorms, and its
    Scale."""

    def __init__(self, stem: nn.Module, cls_branch: nn.Module, box_branch: nn.Module):
        super().__init__()
        self.stem, self.cls_branch, self.box_branch = stem, cls_branch, box_branch
        self.scale = Scale(1.0)


def with_shared_convs(module: nn.Module) -> nn.Module:
    """A copy of `module` with fresh BatchNorms (and everything else copied) whose Conv2d's are `module`'s own
    objects, so both train one set of conv weights."""
    twin = copy.deepcopy(module)
    pairs = [(t, m) for t, m in zip(list(twin.modules()), list(module.modules())) if isinstance(t, nn.Sequential)]
    for seq_twin, seq in pairs:
        for i, child in enumerate(seq):
            if isinstance(child, nn.Conv2d):
                seq_twin[i] = child
    return twin


class SharedHead(nn.Module):
    """One stem, one class branch and one box branch whose conv weights serve every level; one BatchNorm per level.

    Outputs per level: box distances (l, t, r, b) in input pixels = relu(scale_l * raw) * stride_l, and class logits.
    `cls_pred` and `box_pred` are the final output convs (never pruned).

    Each level has its own BatchNorms (`levels[l]`, convs shared with `levels[0]`), as in EfficientDet: one
    BatchNorm called on all three levels normalises each by its own batch statistics in training but by one running
    average of all three in eval mode, so the evaluated model is not the model trained (ad hoc: 4 images trained to a
    loss of 0.20 scored 14.9 in eval mode; tests/test_model.py checks each BatchNorm runs once per forward). Folding each
    level's BatchNorms into the shared convs gives each level its own fused copy of them in an exported file.
    """

    def __init__(self, width: int, nc: int, depth: int = 1, act: str = "relu", strides: tuple[int, ...] = STRIDES):
        super().__init__()
        self.nc = nc
        self.strides = strides
        stem = DWSeparable(width, width, 3, act=act)
        cls_branch = nn.Sequential(*(DWSeparable(width, width, 3, act=act) for _ in range(depth)))
        box_branch = nn.Sequential(*(DWSeparable(width, width, 3, act=act) for _ in range(depth)))
        self.cls_pred = nn.Conv2d(width, nc, 1)
        self.box_pred = nn.Conv2d(width, 4, 1)
        self.levels = nn.ModuleList(
            [LevelPath(stem, cls_branch, box_branch)]
            + [LevelPath(*(with_shared_convs(m) for m in (stem, cls_branch, box_branch))) for _ in strides[1:]])
        self._init_bias()

    def _init_bias(self, prior: float = 0.01, box_init: float = 2.0) -> None:
        nn.init.constant_(self.cls_pred.bias, -math.log((1 - prior) / prior))
        nn.init.normal_(self.cls_pred.weight, std=0.01)
        nn.init.constant_(self.box_pred.bias, box_init)
        nn.init.normal_(self.box_pred.weight, std=0.01)

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (boxes [B, N, 4] pixel distances, logits [B, N, nc]) with levels concatenated in order."""
        boxes, logits = [], []
        for i, level in enumerate(self.levels):  # not zip(feats, self.levels): TorchScript unrolls this form only
            x = level.stem(feats[i])
            cls = self.cls_pred(level.cls_branch(x))
            box = torch.relu(level.scale(self.box_pred(level.box_branch(x)))) * float(self.strides[i])
            b = cls.shape[0]
            logits.append(cls.reshape(b, self.nc, -1))
            boxes.append(box.reshape(b, 4, -1))
        return torch.cat(boxes, 2).permute(0, 2, 1), torch.cat(logits, 2).permute(0, 2, 1)
