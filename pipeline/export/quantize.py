"""NNCF post-training INT8 quantisation of the FP32 ONNX graph (QDQ format, for onnxruntime) and the
calibration set shared with the TFLite stage.

Calibration file (`save_calibration_set` / `load_calibration_set`): a `.npy` holding the exact images,
letterboxed RGB, NHWC, either uint8 (default; pixel = round(x * 255), lossless for images that came from
8-bit files as `u8 / 255`) or float32 in [0, 1] (lossless for anything). `load_calibration_set` always
returns float32 NCHW in [0, 1], the model's input form (CONTRACTS.md).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx

from pipeline.export.common import INPUT_NAME, OUTPUT_NAMES, ExportError, check_images, load_onnx, save_onnx
from pipeline.io.atomic import atomic_write_bytes
from pipeline.io.file_metadata import read_onnx_metadata, set_onnx_metadata

PRESETS = ("mixed", "performance")


def save_calibration_set(images: np.ndarray, path: str | Path, dtype: str = "uint8") -> Path:
    """Save float NCHW [0, 1] `images` as NHWC `.npy` (uint8 = round(x*255), or float32), atomically."""
    images = check_images(images, str(path))
    nhwc = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    if dtype == "uint8":
        nhwc = np.clip(np.round(nhwc * 255.0), 0, 255).astype(np.uint8)
    elif dtype == "float32":
        nhwc = nhwc.astype(np.float32)
    else:
        raise ValueError(f"{path}: calibration dtype must be 'uint8' or 'float32', got {dtype!r}")
    buf = io.BytesIO()
    np.save(buf, nhwc, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def load_calibration_set(path: str | Path) -> np.ndarray:
    """Load a file written by `save_calibration_set`; returns float32 NCHW in [0, 1]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"calibration set not found: {path}")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:
        raise ValueError(f"{path}: not a readable .npy calibration set ({e})") from e
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"{path}: expected NHWC images [n, S, S, 3], got shape {arr.shape}")
    if arr.dtype == np.uint8:
        x = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.float32:
        x = arr
    else:
        raise ValueError(f"{path}: expected uint8 or float32 images, got dtype {arr.dtype}")
    return check_images(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), str(path))


def output_node_names(model: onnx.ModelProto, outputs: Iterable[str] = OUTPUT_NAMES,
                      op_types: Iterable[str] = ("Sigmoid",)) -> list[str]:
    """Names of `op_types` nodes that feed the graph outputs through shape-only ops (Reshape/Transpose/...).

    Used to build an `ignored_scope` for the final sigmoid, e.g. `output_node_names(m, ["scores"])`.
    """
    producer = {o: n for n in model.graph.node for o in n.output}
    passthrough = {"Reshape", "Transpose", "Concat", "Flatten", "Squeeze", "Unsqueeze", "Identity"}
    found, stack, seen = [], list(outputs), set()
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type in set(op_types):
            found.append(node.name)
        elif node.op_type in passthrough:
            stack.extend(i for i in node.input if i in producer)
    return found


def count_qdq(model: onnx.ModelProto) -> dict[str, int]:
    ops = [n.op_type for n in model.graph.node]
    return {"QuantizeLinear": ops.count("QuantizeLinear"), "DequantizeLinear": ops.count("DequantizeLinear")}


def quantize_onnx_int8(fp32_onnx: str | Path, out_path: str | Path, calib_images: np.ndarray,
                       preset: str = "mixed", ignored_scope: list[str] | None = None,
                       ignore_output_sigmoid: bool = False, subset_size: int | None = None) -> Path:
    """NNCF PTQ of `fp32_onnx` into an INT8 QDQ ONNX at `out_path` (atomic write).

    `calib_images`: float32 NCHW [n, 3, S, S] in [0, 1], all used (`subset_size` defaults to n).
    `preset`: "mixed" (symmetric weights, asymmetric activations; NNCF's advice for non-ReLU / skewed
    activations) or "performance" (all symmetric). `ignored_scope`: node names NNCF must leave in FP32;
    `ignore_output_sigmoid` adds the Sigmoid that produces `scores` (measured: no effect, NNCF puts no
    quantizer on the Sigmoid or after it; the option stays for graphs where it would).
    Full (non-fast) bias correction is not offered: NNCF 3.4's BiasCorrection fails on this graph
    ("Duplicate definition-site" in its subgraph extraction); fast bias correction works.
    Output names stay `boxes`/`scores` (checked).
    """
    import nncf

    fp32_onnx, out_path = Path(fp32_onnx), Path(out_path)
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    model = load_onnx(fp32_onnx)
    calib = check_images(calib_images, "calib_images")
    size = int(model.graph.input[0].type.tensor_type.shape.dim[-1].dim_value)
    if size and calib.shape[-1] != size:
        raise ValueError(f"calib_images are {calib.shape[-1]}px but {fp32_onnx} expects {size}px")
    names = list(ignored_scope or [])
    if ignore_output_sigmoid:
        names += output_node_names(model, ["scores"])
    scope = nncf.IgnoredScope(names=names) if names else None
    dataset = nncf.Dataset(list(calib), lambda x: {INPUT_NAME: x[None]})
    nncf_logger = logging.getLogger("nncf")
    level = nncf_logger.level
    nncf_logger.setLevel(logging.WARNING)
    try:
        qmodel = nncf.quantize(
            model, dataset, preset=getattr(nncf.QuantizationPreset, preset.upper()),
            subset_size=subset_size or len(calib), fast_bias_correction=True, ignored_scope=scope,
        )
    except Exception as e:
        raise ExportError(f"{fp32_onnx}: NNCF quantisation failed: {type(e).__name__}: {e}") from e
    finally:
        nncf_logger.setLevel(level)
    got = [o.name for o in qmodel.graph.output]
    if got != [o.name for o in model.graph.output]:
        raise ExportError(f"{out_path}: NNCF changed the output names {[o.name for o in model.graph.output]} -> {got}")
    if count_qdq(qmodel)["QuantizeLinear"] == 0:
        raise ExportError(f"{out_path}: NNCF inserted no QuantizeLinear nodes")
    set_onnx_metadata(qmodel, read_onnx_metadata(model))  # class names etc. travel from the FP32 graph
    return save_onnx(qmodel, out_path)


def compare_outputs(ref: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per output: max and mean abs difference."""
    out = {}
    for name in ref:
        d = np.abs(ref[name].astype(np.float64) - got[name].astype(np.float64))
        out[name] = {"max_abs": float(d.max()), "mean_abs": float(d.mean())}
    return out


def quantization_report(fp32_onnx: str | Path, int8_onnx: str | Path, images: np.ndarray) -> dict:
    """Run both graphs with onnxruntime on `images`; per-output max/mean abs diff, QDQ counts, sizes, timing."""
    from pipeline.export.onnx_export import run_onnx

    t0 = time.perf_counter()
    ref = run_onnx(fp32_onnx, images)
    got = run_onnx(int8_onnx, images, exact=True)  # the fused INT8 kernels are not deterministic
    return {
        "diff": compare_outputs(ref, got), "qdq": count_qdq(onnx.load(str(int8_onnx))),
        "fp32_size_bytes": Path(fp32_onnx).stat().st_size, "int8_size_bytes": Path(int8_onnx).stat().st_size,
        "seconds": time.perf_counter() - t0,
    }
