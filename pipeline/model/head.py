"""Anchor-free detection head whose weights are shared across the three scales.

Box and class outputs are separate tensors of different shapes (a shared INT8 scale for pixel distances
and probabilities would destroy the scores). Decoding and NMS stay outside (`pipeline/infer/postprocess.py`).
"""

from __future__ import annotations

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


class SharedHead(nn.Module):
    """One stem, one class branch and one box branch applied to every level.

    Outputs per level: box distances (l, t, r, b) in input pixels = relu(scale_l * raw) * stride_l, and class logits.
    `cls_pred` and `box_pred` are the final output convs (never pruned).

    The shared convs have biases and no BatchNorm. A BatchNorm called once per level normalises each level by its
    own batch statistics in training, but by one running average of all three levels in eval mode, so the eval
    model is not the model trained: on 4 images trained to a loss of 0.20, eval mode scored a loss of 14.9 and
    val mAP50 fell from 1.0 to 0.61 while training went on (tests/test_model.py checks no BatchNorm is shared).
    """

    def __init__(self, width: int, nc: int, depth: int = 1, act: str = "relu", strides: tuple[int, ...] = STRIDES):
        super().__init__()
        self.nc = nc
        self.strides = strides
        self.stem = DWSeparable(width, width, 3, act=act, bn=False)
        self.cls_branch = nn.Sequential(*(DWSeparable(width, width, 3, act=act, bn=False) for _ in range(depth)))
        self.box_branch = nn.Sequential(*(DWSeparable(width, width, 3, act=act, bn=False) for _ in range(depth)))
        self.cls_pred = nn.Conv2d(width, nc, 1)
        self.box_pred = nn.Conv2d(width, 4, 1)
        self.scales = nn.ModuleList(Scale(1.0) for _ in strides)
        self._init_bias()

    def _init_bias(self, prior: float = 0.01, box_init: float = 2.0) -> None:
        nn.init.constant_(self.cls_pred.bias, -math.log((1 - prior) / prior))
        nn.init.normal_(self.cls_pred.weight, std=0.01)
        nn.init.constant_(self.box_pred.bias, box_init)
        nn.init.normal_(self.box_pred.weight, std=0.01)

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (boxes [B, N, 4] pixel distances, logits [B, N, nc]) with levels concatenated in order."""
        boxes, logits = [], []
        for feat, scale, stride in zip(feats, self.scales, self.strides):
            x = self.stem(feat)
            cls = self.cls_pred(self.cls_branch(x))
            box = torch.relu(scale(self.box_pred(self.box_branch(x)))) * float(stride)
            b = cls.shape[0]
            logits.append(cls.reshape(b, self.nc, -1))
            boxes.append(box.reshape(b, 4, -1))
        return torch.cat(boxes, 2).permute(0, 2, 1), torch.cat(logits, 2).permute(0, 2, 1)
