"""Rebuild a model from its checkpoint: the architecture (variant, nc, act, replayed pruning history), then the
weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.io.checkpoint import read_checkpoint
from pipeline.model.leafyolo import LeafYOLO


def build_model(ckpt: dict[str, Any]) -> LeafYOLO:
    """Rebuild the architecture described by a checkpoint (pruned ones included), without loading weights."""
    model = LeafYOLO(ckpt["variant"], int(ckpt["nc"]), act=ckpt["act"])
    if ckpt.get("pruning_history"):
        from pipeline.compress.prune import replay_pruning  # lazily: torch-pruning only for pruned models

        replay_pruning(model, ckpt["pruning_history"], int(ckpt["imgsz"]))
    return model


def load_model(path: str | Path, weights: str = "model") -> tuple[LeafYOLO, dict[str, Any]]:
    """Rebuild and load a model from a checkpoint. `weights` picks 'model' or 'ema' weights when both exist."""
    ckpt = read_checkpoint(path)
    try:
        model = build_model(ckpt)
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as exc:  # e.g. a pruning history of another model
        raise ValueError(f"checkpoint {path}: cannot rebuild its {ckpt['variant']} architecture: {exc}") from exc
    state = ckpt.get(weights) or ckpt["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {path}: weights do not fit the {ckpt['variant']} architecture: {exc}") from exc
    return model.eval(), ckpt

