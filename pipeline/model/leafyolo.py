"""LEAF-YOLO: composes backbone, neck and shared head. Blocks live beside this file."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.common.seeding import seeded
from pipeline.model.backbone import Backbone
from pipeline.model.head import SharedHead
from pipeline.model.neck import GhostPAN
from pipeline.model.variants import STRIDES, get_variant


class LeafYOLO(nn.Module):
    def __init__(self, variant: str = "leafyolo_u", nc: int = 80, act: str = "relu", seed: int = 0):
        """`seed` fixes the initial weights: the same (variant, nc, act, seed) always starts from the same model."""
        super().__init__()
        spec = get_variant(variant)
        if nc < 1:
            raise ValueError(f"nc must be >= 1, got {nc}")
        self.variant, self.nc, self.act, self.strides = variant, nc, act, STRIDES
        with seeded(seed):
            self.backbone = Backbone(spec.widths, spec.depths, act=act, stem_ir=spec.stem_ir, expand=spec.expand)
            self.neck = GhostPAN(self.backbone.out_channels, spec.neck_width, spec.neck_depth, act=act)
            self.head = SharedHead(spec.neck_width, nc, spec.head_depth, act=act)

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(boxes [B,N,4] pixel ltrb distances, class logits [B,N,nc], neck feature maps)."""
        feats = self.neck(self.backbone(x))
        boxes, logits = self.head(feats)
        return boxes, logits, feats

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Export/eval form: (boxes [B,N,4], scores [B,N,nc] sigmoid probabilities)."""
        boxes, logits = self.head(self.neck(self.backbone(x)))
        return boxes, torch.sigmoid(logits)
