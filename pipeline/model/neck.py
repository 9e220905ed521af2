"""FPN/PAN neck over strides 8/16/32 that brings every scale to one width (the head is shared)."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.model.blocks import ConvBNAct, CSPGhost, DWSeparable


class GhostPAN(nn.Module):
    """Top-down (FPN) then bottom-up (PAN) fusion; concatenation, never split, so channels stay prunable."""

    def __init__(self, in_channels: tuple[int, int, int], width: int, depth: int = 1, act: str = "relu"):
        super().__init__()
        c3, c4, c5 = in_channels
        self.lat5 = ConvBNAct(c5, width, 1, act=act)
        self.lat4 = ConvBNAct(c4, width, 1, act=act)
        self.lat3 = ConvBNAct(c3, width, 1, act=act)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.td4 = CSPGhost(2 * width, width, depth, act=act)
        self.td3 = CSPGhost(2 * width, width, depth, act=act)
        self.down3 = DWSeparable(width, width, 3, 2, act=act)
        self.bu4 = CSPGhost(2 * width, width, depth, act=act)
        self.down4 = DWSeparable(width, width, 3, 2, act=act)
        self.bu5 = CSPGhost(2 * width, width, depth, act=act)

    def forward(self, feats: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
        p3, p4, p5 = feats
        l5 = self.lat5(p5)
        t4 = self.td4(torch.cat((self.up(l5), self.lat4(p4)), 1))
        n3 = self.td3(torch.cat((self.up(t4), self.lat3(p3)), 1))
        n4 = self.bu4(torch.cat((self.down3(n3), t4), 1))
        n5 = self.bu5(torch.cat((self.down4(n4), l5), 1))
        return [n3, n4, n5]
