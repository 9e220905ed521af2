"""Shared helpers of the export package: the project error, ONNX saving and loading with a clear message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from pipeline.io.atomic import atomic_write_bytes

INPUT_NAME = "images"
OUTPUT_NAMES = ("boxes", "scores")


class ExportError(RuntimeError):
    """An export/conversion step failed; the message names the file and the underlying tool's message."""


def save_onnx(model: onnx.ModelProto, path: str | Path) -> Path:
    atomic_write_bytes(path, model.SerializeToString())
    return Path(path)


def load_onnx(path: str | Path, check: bool = True) -> onnx.ModelProto:
    """Load and (optionally) run `onnx.checker`; any failure raises ExportError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # truncated / not protobuf
        raise ExportError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from e
    if check:
        check_onnx(model, path)
    return model


def check_onnx(model: onnx.ModelProto, path: str | Path) -> None:
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:
        raise ExportError(f"{path}: onnx.checker failed: {e}") from e
    if not model.graph.node:
        raise ExportError(f"{path}: ONNX graph has no nodes")


def check_images(images: np.ndarray, what: str) -> np.ndarray:
    """Validate float NCHW [n, 3, S, S] images in [0, 1]; returns them as float32 (ValueError naming `what`)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3] or images.shape[0] < 1:
        raise ValueError(f"{what}: expected float images [n, 3, S, S], got shape {images.shape}")
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"{what}: expected float images in [0, 1], got dtype {images.dtype}")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"{what}: image values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]")
    return images.astype(np.float32, copy=False)


# The largest output differences an export may show on its check images before the export fails, per output:
# boxes in input pixels (a fraction of the image size), scores in probability. Each is about ten times what the
# default models measure (FP32 ONNX vs torch: 1e-4 px / 1e-7; FP16 vs FP32: 0.13 px / 1.5e-4 max; full-INT8 TFLite
# vs FP32 ONNX: 0.5 px / 7e-4 mean at 192 px), so a broken conversion fails while quantisation noise passes.
PARITY: dict[str, dict] = {
    "onnx_fp32": {"stat": "max_abs", "boxes": 1e-2 / 192, "scores": 1e-4},   # vs torch
    "onnx_fp16": {"stat": "max_abs", "boxes": 1e-2, "scores": 1e-2},         # vs FP32 ONNX
    "tflite_float32": {"stat": "max_abs", "boxes": 1e-2 / 192, "scores": 1e-4},  # vs FP32 ONNX
    "tflite_float16": {"stat": "max_abs", "boxes": 1e-2, "scores": 1e-2},    # vs FP32 ONNX
    "tflite_int8": {"stat": "mean_abs", "boxes": 1e-2, "scores": 1e-2},      # vs FP32 ONNX
}


def check_parity(kind: str, diffs: dict[str, float], imgsz: int, path: str | Path) -> None:
    """Raise ExportError naming `path` when an output differs from its reference by more than PARITY[kind]
    (`diffs`: output name -> the measured statistic; box limits scale with the image size)."""
    limits = PARITY[kind]
    for name, value in diffs.items():
        limit = limits[name] * (imgsz if name == "boxes" else 1)
        if not value <= limit:
            raise ExportError(f"{path}: {kind} output {name!r} differs from its reference by {value:.4g} "
                              f"({limits['stat']}, limit {limit:.4g}); the conversion is broken")
