"""`quantize_model`: NNCF post-training INT8 quantisation to a QDQ ONNX (what the `calibrate` stage writes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leafyolo.exporting import calibration_images, default_path, export_onnx_int8
from leafyolo.metadata import metadata
from leafyolo.model import LEAFYOLO
from leafyolo.options import ExportOptions
from leafyolo.utils.pruning import as_leafyolo


def quantize_model(model: LEAFYOLO | str | Path, calibration_data: Any, img_size: int | None = None,
                   n_images: int = 128, preset: str = "mixed", file: str | Path | None = None,
                   opset_version: int = 13) -> LEAFYOLO:
    """INT8 QDQ ONNX of `model`, calibrated on `n_images` of `calibration_data` (a data.yaml: a seeded subset
    of its train split; a `.npy` calibration set; or a float NCHW [0, 1] array).

    Returns a LEAFYOLO wrapping the INT8 ONNX (onnxruntime): `quantized.path` is the file, and
    `quantized.predict(...)` / `quantized.val(...)` run it. For a full-INT8 TFLite use
    `model.export(format='tflite', int8=True, data=...)`.
    """
    m = as_leafyolo(model)
    model = m.torch_module("quantize_model")
    imgsz = int(img_size or m.imgsz)
    path = Path(file) if file else default_path(model.variant, m.ckpt_path, "onnx", ExportOptions(int8=True), imgsz)
    path.parent.mkdir(parents=True, exist_ok=True)
    calib = calibration_images(calibration_data, imgsz, n_images)
    export_onnx_int8(model, path, imgsz, calib, metadata(model, m.names, imgsz, m.data), opset=opset_version,
                     preset=preset)
    size = path.stat().st_size
    print(f"quantized to {path} ({size:,} bytes, {size / 1e6:.2f} MB) on {len(calib)} calibration images", flush=True)
    return LEAFYOLO(path, names=m.names)
