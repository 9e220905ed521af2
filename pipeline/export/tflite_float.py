"""FP32 ONNX -> float32 or float16 TFLite through onnx2tf (no calibration), for the `leafyolo` export API.

The conversion is the same onnx2tf run as the full-INT8 exporter (`tflite_export._run_onnx2tf`: offline,
graph rewritten exactly by `graph_prep`, errors turned into ExportError) without integer quantisation;
onnx2tf then writes `model_float32.tflite` and `model_float16.tflite` (float16 weights, float32 input,
outputs and compute). Input is NHWC float32 [1, S, S, 3]; outputs are `boxes` and `scores` as in the ONNX.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.data.atomic import atomic_copy
from pipeline.export.common import ExportError, check_images, load_onnx, save_onnx
from pipeline.export.graph_prep import prepare_for_onnx2tf
from pipeline.export.onnx_export import parity_input
from pipeline.export.tflite_export import SAMPLE_FILE, _log_excerpt, _run_onnx2tf, compare_tflite

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
    if {"QuantizeLinear", "DequantizeLinear"} & {n.op_type for n in model.graph.node}:
        raise ExportError(f"{fp32_onnx}: QDQ (quantised) ONNX given; onnx2tf needs the FP32 ONNX")
    size = model.graph.input[0].type.tensor_type.shape.dim[-1].dim_value
    if not size:
        raise ExportError(f"{fp32_onnx}: the input size is not fixed; export the ONNX with a fixed image size")
    images = check_images(parity_input(size, batch=4) if check_images_nchw is None else check_images_nchw,
                          "check_images_nchw")
    tmp = None if workdir else tempfile.mkdtemp(prefix="onnx2tf_float_")
    work = Path(workdir or tmp).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        nhwc = np.ascontiguousarray(images.transpose(0, 2, 3, 1), dtype=np.float32)
        np.save(work / SAMPLE_FILE, nhwc[:20])  # onnx2tf's own check data: read from cwd, never downloaded
        np.save(work / "check_nhwc_float32.npy", nhwc)
        source = work / "model.onnx"
        save_onnx(prepare_for_onnx2tf(model), source)
        tf_dir = _run_onnx2tf(fp32_onnx, source, work, work / "check_nhwc_float32.npy", dict(FLOAT_OPTIONS))
        produced = tf_dir / ("model_float16.tflite" if half else "model_float32.tflite")
        if not produced.is_file():
            raise ExportError(f"onnx2tf produced no {produced.name} for {fp32_onnx}:\n"
                              f"{_log_excerpt(work / 'onnx2tf.log')}")
        outputs = compare_tflite(produced, fp32_onnx, images)
        atomic_copy(produced, out_path)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"path": str(out_path), "size_bytes": out_path.stat().st_size, "outputs": outputs,
            "seconds": time.perf_counter() - t0}
