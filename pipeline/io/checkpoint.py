"""Checkpoints that carry what is needed to rebuild the model: variant, nc, names, act, imgsz, pruning history.

Reading and writing only (tensors and plain data, loaded with `weights_only=True`); rebuilding the model from a
checkpoint is `pipeline.io.model_loader`, so checks that only read a checkpoint need neither the model nor torch-pruning.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from pipeline.io.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from pipeline.model.leafyolo import LeafYOLO

REQUIRED_KEYS = ("variant", "nc", "names", "act", "imgsz", "model")
MAX_NC = 10_000  # classes; a corrupt count would otherwise size the head's convolutions (10**9 classes: 288 GB)
MAX_IMGSZ = 4096  # pixels; the pruning replay and `info` run the model once at the checkpoint's size


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """Write to a temp file beside `path`, then rename, so an interrupted save never leaves a half file."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def model_meta(model: LeafYOLO, names: list[str], imgsz: int, pruning_history: list | None = None) -> dict[str, Any]:
    return {
        "variant": model.variant,
        "nc": model.nc,
        "names": list(names),
        "act": model.act,
        "imgsz": int(imgsz),
        "pruning_history": pruning_history or [],
    }


def save_checkpoint(path: str | Path, model: LeafYOLO, names: list[str], imgsz: int,
                    pruning_history: list | None = None, **extra: Any) -> None:
    """Save weights (float32 state dict) with the metadata needed by `load_model`; `extra` holds trainer state."""
    state = {k: v.detach().float().cpu() if v.is_floating_point() else v.cpu() for k, v in model.state_dict().items()}
    atomic_torch_save({**model_meta(model, names, imgsz, pruning_history), "model": state, **extra}, path)


NO_TEACHER_KEY = "no_teacher"  # the teacher stage's file when it trains nothing: {NO_TEACHER_KEY: reason}


def write_no_teacher(path: str | Path, reason: str) -> None:
    """The teacher stage's output when there is no teacher: a checkpoint holding only why, refused by
    `read_checkpoint` with that reason."""
    atomic_torch_save({NO_TEACHER_KEY: reason}, path)


class UnsafeCheckpointError(ValueError):
    """A checkpoint whose pickle holds more than tensors and plain data: refused, since loading it could run code."""


def safe_load(path: str | Path, map_location: Any = "cpu") -> Any:
    """`torch.load` with `weights_only=True`: tensors, numbers, strings, lists, tuples and dicts only.

    A file whose pickle names any other object (a function such as `os.system`, a class) is refused before
    anything in it runs, with `UnsafeCheckpointError`; a file that is not a torch pickle at all raises ValueError.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        named = next((ln.strip() for ln in str(exc).splitlines() if "GLOBAL" in ln), "")
        if named:  # the pickle names a function or class: exactly what weights_only refuses to call
            raise UnsafeCheckpointError(
                f"checkpoint {path} holds objects other than tensors and plain data ({named}); refused without "
                f"running it: expected a LEAF-YOLO checkpoint (tensors, numbers, strings, lists, dicts)") from None
        raise ValueError(f"checkpoint {path} is corrupt or not a LEAF-YOLO checkpoint (not a torch file of "
                         f"tensors and plain data)") from None
    except Exception as exc:  # torch raises many types for a corrupt file
        raise ValueError(f"checkpoint {path} is corrupt or not a LEAF-YOLO checkpoint: {exc}") from exc


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load (safely) and validate a checkpoint dict; errors name the file and what is wrong."""
    path = Path(path)
    ckpt = safe_load(path)
    if not isinstance(ckpt, dict):
        raise ValueError(f"checkpoint {path} is not a LEAF-YOLO checkpoint (expected a dict, got {type(ckpt).__name__})")
    if NO_TEACHER_KEY in ckpt:
        raise ValueError(f"{path} holds no model: the teacher stage trained none ({ckpt[NO_TEACHER_KEY]}); set "
                         "teacher.variant (leafyolo_s) or teacher.weights to have a teacher, or distill.alpha and "
                         "finetune.alpha to 0")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise ValueError(f"checkpoint {path} is missing keys {missing}; expected {list(REQUIRED_KEYS)}")
    _check_fields(path, ckpt)
    return ckpt


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_fields(path: Path, ckpt: dict[str, Any]) -> None:
    """The values `build_model` sizes the network from, checked before anything is built from them."""
    from pipeline.model.variants import VARIANTS  # an unknown `act` fails in build_model, which names the file too

    def tensors(v: Any) -> bool:
        return isinstance(v, dict) and all(isinstance(k, str) and isinstance(t, torch.Tensor) for k, t in v.items())

    nc = ckpt["nc"]
    checks = {
        "variant": (ckpt["variant"] in VARIANTS if isinstance(ckpt["variant"], str) else False,
                    f"one of {sorted(VARIANTS)}"),
        "nc": (_is_int(nc) and 1 <= nc <= MAX_NC, f"an integer in [1, {MAX_NC}]"),
        "names": (isinstance(ckpt["names"], (list, tuple)) and all(isinstance(n, str) for n in ckpt["names"])
                  and len(ckpt["names"]) == nc, f"a list of {nc} class names"),
        "act": (isinstance(ckpt["act"], str), "an activation name"),
        "imgsz": (_is_int(ckpt["imgsz"]) and 32 <= ckpt["imgsz"] <= MAX_IMGSZ and ckpt["imgsz"] % 32 == 0,
                  f"a multiple of 32 in [32, {MAX_IMGSZ}]"),
        "model": (tensors(ckpt["model"]), "a state dict (parameter name -> tensor)"),
        "ema": (ckpt.get("ema") is None or tensors(ckpt["ema"]), "a state dict (parameter name -> tensor)"),
        "pruning_history": (isinstance(ckpt.get("pruning_history") or [], list), "a list"),
    }
    for key, (ok, expected) in checks.items():
        if not ok:
            raise ValueError(f"checkpoint {path}: key '{key}' is {str(ckpt.get(key))[:100]!r}; expected {expected}")
