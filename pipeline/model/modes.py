"""Run a model in eval mode for a moment and put every module back in the mode it had."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode (BatchNorm uses, and does not update, its running statistics) inside the block; after
    it each module gets its own earlier mode back, so a part kept in eval inside a training model stays in eval
    (`model.train(previous)` would set them all alike)."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes.items():
            m.training = training
