"""Parameter counting, below every module that reports or targets a parameter count (pruning, checkpoints,
stages)."""

from __future__ import annotations

from torch import nn


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
