"""Backbone: a light stem, inverted residuals with squeeze-excite, Ghost CSP stages, micro-attention on P5."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.model.blocks import ConvBNAct, CSPGhost, DWSeparable, InvertedResidualSE, MicroAttention, SPPFLite


class Backbone(nn.Module):
    """Returns the stride-8, 16 and 32 feature maps (P3, P4, P5)."""

    def __init__(self, widths: tuple[int, int, int, int, int], depths: tuple[int, int, int], act: str = "relu",
                 stem_ir: bool = True, expand: float = 3.0):
        super().__init__()
        c0, c1, c2, c3, c4 = widths
        stem: list[nn.Module] = [
            ConvBNAct(3, c0, 3, 2, act=act),  # stride 2
            DWSeparable(c0, c1, 3, 2, act=act),  # stride 4
        ]
        if stem_ir:
            stem.append(InvertedResidualSE(c1, c1, 1, expand=2.0, act=act, se=False))
        self.stem = nn.Sequential(*stem)
        self.stage3 = nn.Sequential(
            InvertedResidualSE(c1, c2, 2, expand=expand, act=act),  # stride 8
            CSPGhost(c2, c2, depths[0], act=act),
        )
        self.stage4 = nn.Sequential(
            InvertedResidualSE(c2, c3, 2, expand=expand, act=act),  # stride 16
            CSPGhost(c3, c3, depths[1], act=act),
        )
        self.stage5 = nn.Sequential(
            InvertedResidualSE(c3, c4, 2, expand=expand, act=act),  # stride 32
            CSPGhost(c4, c4, depths[2], act=act),
            SPPFLite(c4, c4, act=act),
            MicroAttention(c4, act=act),
        )
        self.out_channels = (c2, c3, c4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p3 = self.stage3(self.stem(x))
        p4 = self.stage4(p3)
        return p3, p4, self.stage5(p4)
