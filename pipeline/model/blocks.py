"""Building blocks of the LEAF-YOLO family, each chosen to stay prunable and INT8-friendly.

Every block avoids `chunk`/`split` of one conv (channels stay prunable) and uses an activation
picked by name, so the INT8 drop of each choice can be measured (`bench/activation_int8.py`).
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "silu": nn.SiLU,
    "hardswish": nn.Hardswish,
}


def make_act(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name](inplace=True)


class ConvBNAct(nn.Sequential):
    """Conv2d + BatchNorm2d + activation (activation omitted when `act` is None)."""

    def __init__(self, c_in: int, c_out: int, k: int = 1, s: int = 1, groups: int = 1, act: str | None = "relu"):
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, k, s, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        if act is not None:
            layers.append(make_act(act))
        super().__init__(*layers)


class DWSeparable(nn.Sequential):
    """Depthwise k x k conv followed by a pointwise 1x1 conv."""

    def __init__(self, c_in: int, c_out: int, k: int = 3, s: int = 1, act: str = "relu"):
        super().__init__(
            ConvBNAct(c_in, c_in, k, s, groups=c_in, act=act),
            ConvBNAct(c_in, c_out, 1, 1, act=act),
        )


class GhostModule(nn.Module):
    """Primary 1x1 features plus cheap depthwise 'ghost' features of them, concatenated."""

    def __init__(self, c_in: int, c_out: int, act: str | None = "relu", dw_k: int = 3):
        super().__init__()
        c_primary = (c_out + 1) // 2
        self.primary = ConvBNAct(c_in, c_primary, 1, act=act)
        self.cheap = ConvBNAct(c_primary, c_out - c_primary, dw_k, groups=c_out - c_primary, act=act) \
            if c_out - c_primary == c_primary else ConvBNAct(c_primary, c_out - c_primary, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.primary(x)
        return torch.cat((y, self.cheap(y)), 1)


class SqueezeExcite(nn.Module):
    """Channel gate from globally pooled features (hard-sigmoid: exact in INT8)."""

    def __init__(self, c: int, reduction: int = 4):
        super().__init__()
        hidden = max(8, c // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, c, 1)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class InvertedResidualSE(nn.Module):
    """MobileNetV2/V3 inverted residual: 1x1 expand, depthwise, squeeze-excite, 1x1 project."""

    def __init__(self, c_in: int, c_out: int, s: int = 1, expand: float = 3.0, act: str = "relu", se: bool = True):
        super().__init__()
        hidden = int(round(c_in * expand))
        self.expand = ConvBNAct(c_in, hidden, 1, act=act)
        self.dw = ConvBNAct(hidden, hidden, 3, s, groups=hidden, act=act)
        self.se = SqueezeExcite(hidden) if se else nn.Identity()
        self.project = ConvBNAct(hidden, c_out, 1, act=None)
        self.residual = s == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.dw(self.expand(x))))
        return x + y if self.residual else y


class MicroAttention(nn.Module):
    """Channel and spatial attention computed on a 1/8-channel squeeze of the input.

    z = 1x1(x) with c/8 channels; channel gate from pooled z, spatial gate from a depthwise 3x3 of z.
    The spatial gate is expanded back to c maps (not one broadcast map), so every channel stays prunable.
    """

    def __init__(self, c: int, ratio: int = 8, act: str = "relu"):
        super().__init__()
        r = max(4, c // ratio)
        self.squeeze = ConvBNAct(c, r, 1, act=act)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.channel = nn.Conv2d(r, c, 1)
        self.spatial_dw = ConvBNAct(r, r, 3, groups=r, act=act)
        self.spatial = nn.Conv2d(r, c, 1)
        self.gate = nn.Hardsigmoid(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.squeeze(x)
        channel_gate = self.gate(self.channel(self.pool(z)))
        spatial_gate = self.gate(self.spatial(self.spatial_dw(z)))
        return x * channel_gate * spatial_gate


class GhostBottleneck(nn.Module):
    """Two Ghost modules with a residual connection (stride 1, same width)."""

    def __init__(self, c: int, expand: float = 2.0, act: str = "relu"):
        super().__init__()
        hidden = int(round(c * expand / 2)) * 2
        self.ghost1 = GhostModule(c, hidden, act=act)
        self.ghost2 = GhostModule(hidden, c, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ghost2(self.ghost1(x))


class CSPGhost(nn.Module):
    """Two parallel 1x1 branches (no split of one conv), Ghost bottlenecks on one, concatenated and fused."""

    def __init__(self, c_in: int, c_out: int, n: int = 1, act: str = "relu"):
        super().__init__()
        c_mid = max(8, c_out // 2)
        self.branch_main = ConvBNAct(c_in, c_mid, 1, act=act)
        self.branch_skip = ConvBNAct(c_in, c_mid, 1, act=act)
        self.blocks = nn.Sequential(*(GhostBottleneck(c_mid, act=act) for _ in range(n)))
        self.fuse = ConvBNAct(2 * c_mid, c_out, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat((self.blocks(self.branch_main(x)), self.branch_skip(x)), 1))


class SPPFLite(nn.Module):
    """Spatial pyramid pooling (fast form): three chained 5x5 max-pools, concatenated, fused."""

    def __init__(self, c_in: int, c_out: int, act: str = "relu"):
        super().__init__()
        c_mid = c_in // 2
        self.reduce = ConvBNAct(c_in, c_mid, 1, act=act)
        self.pool = nn.MaxPool2d(5, 1, 2)
        self.fuse = ConvBNAct(c_mid * 4, c_out, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        p1 = self.pool(x)
        p2 = self.pool(p1)
        return self.fuse(torch.cat((x, p1, p2, self.pool(p2)), 1))
