"""`prune_model`: structured channel pruning of a LEAFYOLO (pipeline.compress.prune, as the `prune` stage runs it)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from leafyolo.model import LEAFYOLO
from pipeline.compress.prune import prune


def as_leafyolo(model: Any) -> LEAFYOLO:
    return model if isinstance(model, LEAFYOLO) else LEAFYOLO(model)


def prune_model(model: LEAFYOLO | str | Path, sparsity: float = 0.3, img_size: int | None = None,
                importance: str = "l2", inplace: bool = False) -> LEAFYOLO:
    """Remove `sparsity` of the parameters (within 0.02) by channel pruning; returns the pruned LEAFYOLO.

    `model` is left untouched unless `inplace=True` (a copy is pruned). The pruned model records its
    `pruning_history`, so `pruned.save('p.pt')` writes a checkpoint that `LEAFYOLO('p.pt')` and the DVC
    stages rebuild; fine-tune it with `pruned.train(...)`. Figures: `pruned.prune_report`.
    """
    m = as_leafyolo(model)
    m.trainable_module("prune_model")
    target = m if inplace else copy.deepcopy(m)
    result = prune(target.model, sparsity, int(img_size or m.imgsz), importance=importance, verbose=False)
    target.pruning_history = list(m.pruning_history) + list(result.pruning_history)
    target.ckpt_path = None  # its weights no longer match any checkpoint on disk
    target.prune_report = {"params_before": result.params_before, "params_after": result.params_after,
                           "macs_before": result.flops_before, "macs_after": result.flops_after,
                           "achieved_sparsity": result.achieved_sparsity}
    print(f"pruned {result.params_before:,} -> {result.params_after:,} parameters "
          f"({result.achieved_sparsity:.1%} removed), MACs {result.flops_before:,} -> {result.flops_after:,}",
          flush=True)
    return target
