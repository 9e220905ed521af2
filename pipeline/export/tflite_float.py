"""FP32 ONNX -> float32 or float16 TFLite through onnx2tf (no calibration), for the `leafyolo` export API.

The conversion is the same onnx2tf run as the full-INT8 exporter (`tflite_export.onnx2tf_run`: offline,
graph rewritten exactly by `graph_prep`, errors turned into ExportError) without integer quantisation;
onnx2tf then writes `model_float32.tflite` and `model_float16.tflite` (float16 weights, float32 input,
outputs and compute). Input is NHWC float32 [1, S, S, 3]; outputs are `boxes` and `scores` as in the ONNX.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pipeline.export.common import ExportError, check_images, check_parity, load_onnx
from pipeline.export.onnx_export import parity_input
from pipeline.export.tflite_export import _log_excerpt, compare_tflite, onnx2tf_run, require_fp32
from pipeline.io.atomic import atomic_copy

FLOAT_OPTIONS = {"non_verbose": True}  # onnx2tf's default outputs: float32 and float16 TFLite


def export_tflite_float(fp32_onnx: str | Path, out_path: str | Path, half: bool = False,
                        check_images_nchw: np.ndarray | None = None, workdir: str | Path | None = None) -> dict:
    """Write a float32 (or, with `half`, float16-weight) TFLite of the FP32 ONNX at `out_path`.

    `check_images_nchw`: float32 NCHW [n, 3, S, S] in [0, 1] used for onnx2tf's own ONNX-vs-TF checks and for
    the returned diff against onnxruntime (default: 4 fixed random images). Returns {path, size_bytes,
    outputs: {boxes|scores: {..., max_abs_diff, mean_abs_diff}}, seconds}.
    """
    t0 = time.perf_counter()
    fp32_onnx, out_path = Path(fp32_onnx), Path(out_path)
    model = load_onnx(fp32_onnx)
    require_fp32(model, fp32_onnx)
    size = model.graph.input[0].type.tensor_type.shape.dim[-1].dim_value
    if not size:
        raise ExportError(f"{fp32_onnx}: the input size is not fixed; export the ONNX with a fixed image size")
    images = check_images(parity_input(size, batch=4) if check_images_nchw is None else check_images_nchw,
                          "check_images_nchw")
    with onnx2tf_run(fp32_onnx, model, images, "check_nhwc_float32.npy", workdir, dict(FLOAT_OPTIONS)) as (work, tf_dir):
        produced = tf_dir / ("model_float16.tflite" if half else "model_float32.tflite")
        if not produced.is_file():
            raise ExportError(f"onnx2tf produced no {produced.name} for {fp32_onnx}:\n"
                              f"{_log_excerpt(work / 'onnx2tf.log')}")
        outputs = compare_tflite(produced, fp32_onnx, images)
        check_parity("tflite_float16" if half else "tflite_float32", {n: o["max_abs_diff"] for n, o in outputs.items()},
                     size, out_path)
        atomic_copy(produced, out_path)
    return {"path": str(out_path), "size_bytes": out_path.stat().st_size, "outputs": outputs,
            "seconds": time.perf_counter() - t0}
