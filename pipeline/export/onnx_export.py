"""PyTorch -> ONNX (FP32, simplified, checked, parity-tested) and an FP16-weight copy with FP32 I/O.

The graph ends at `(boxes [B,N,4], scores [B,N,nc])` (see CONTRACTS.md); decoding and NMS stay outside.
"""

from __future__ import annotations

import copy
import io
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from pipeline.export.common import INPUT_NAME, OUTPUT_NAMES, ExportError, check_onnx, check_parity, save_onnx
from pipeline.io.file_metadata import set_onnx_metadata
from pipeline.model.fuse import fuse_conv_bn


def parity_input(imgsz: int, batch: int = 1, seed: int = 0) -> np.ndarray:
    """Deterministic random image batch in [0, 1], float32 NCHW."""
    return np.random.default_rng(seed).random((batch, 3, imgsz, imgsz), dtype=np.float32)


def run_onnx(model: onnx.ModelProto | str | Path, x: np.ndarray, exact: bool = False) -> dict[str, np.ndarray]:
    """Run with onnxruntime; returns {output_name: array}. A fixed-batch graph is run in chunks of its batch."""
    from pipeline.infer.backends import ort_session

    sess = ort_session(model, exact=exact)
    inp = sess.get_inputs()[0]
    names = [o.name for o in sess.get_outputs()]
    step = inp.shape[0] if isinstance(inp.shape[0], int) else len(x)
    if len(x) % step:
        raise ValueError(f"batch {len(x)} is not a multiple of the graph's fixed batch {step}")
    x = x.astype(np.float32)
    chunks = [sess.run(names, {inp.name: x[i:i + step]}) for i in range(0, len(x), step)]
    return {n: np.concatenate([c[k] for c in chunks]) for k, n in enumerate(names)}


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def _torch_to_onnx(model: nn.Module, imgsz: int, opset: int, dynamic_batch: bool) -> onnx.ModelProto:
    """The TorchScript exporter's graph of a Conv+BN-fused copy of `model`. The fusion is ours, not the exporter's:
    the exporter folds each BatchNorm with `torch.sqrt`, which runs MKL's vector math, whose last bits differ
    between CPUs (a cold repro on an AMD EPYC matched every checkpoint of a lock recorded on an Intel Xeon but no
    export; the exporter's fused weights were up to 1 ulp apart between an AMD EPYC and the same run under an
    emulated AVX2 EPYC); `fuse_conv_bn` folds with ATen's exactly rounded `rsqrt` (pipeline/common/kernels.py)."""
    model = copy.deepcopy(model)
    fuse_conv_bn(model)
    x = torch.zeros(1, 3, imgsz, imgsz)
    buf = io.BytesIO()
    dynamic_axes = {n: {0: "batch"} for n in (INPUT_NAME, *OUTPUT_NAMES)} if dynamic_batch else None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript-exporter deprecation / tracer warnings
        torch.onnx.export(
            model, (x,), buf, dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES), dynamic_axes=dynamic_axes, do_constant_folding=True,
        )
    return onnx.load_from_string(buf.getvalue())


def simplify_onnx(model: onnx.ModelProto, path: str | Path) -> onnx.ModelProto:
    """onnxsim, validated; any failure raises ExportError naming `path`."""
    import onnxsim

    try:
        simplified, ok = onnxsim.simplify(model)
    except Exception as e:
        raise ExportError(f"{path}: onnxsim failed: {e}") from e
    if not ok:
        raise ExportError(f"{path}: onnxsim could not validate the simplified model")
    return simplified


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """FP16 weights and compute, FP32 `images`/`boxes`/`scores` (Cast nodes at the edges).

    Uses the float16 converter shipped with onnxruntime (`onnxruntime.transformers.float16`, a maintained
    copy of onnxconverter-common's), so no extra package is needed.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    half = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
    _toposort(half.graph)  # the converter appends the input Casts at the end of the node list
    return half


def _toposort(graph: onnx.GraphProto) -> None:
    """Reorder `graph.node` in place so every node follows the producers of its inputs (stable)."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = [n for n in pending if not all(i in ready for i in n.input)]
        done = [n for n in pending if all(i in ready for i in n.input)]
        if not done:
            raise ExportError(f"graph has a cycle or a dangling input near node {rest[0].name!r}")
        for n in done:
            ready.update(n.output)
        ordered += done
        pending = rest
    copies = [onnx.NodeProto.FromString(n.SerializeToString()) for n in ordered]
    del graph.node[:]
    graph.node.extend(copies)


def export_onnx(model: nn.Module, path: str | Path, imgsz: int, opset: int = 13, simplify: bool = True,
                fp16_path: str | Path | None = None, dynamic_batch: bool = False,
                metadata: dict | None = None) -> dict:
    """Export `model` (its export form `model(x) -> (boxes, scores)`) to ONNX at `path`.

    Steps: Conv+BN fusion (ours, portable across CPUs) -> TorchScript exporter (`dynamo=False`: small, stable
    graphs) -> onnxsim -> `onnx.checker` -> atomic write -> onnxruntime parity against torch on
    `parity_input(imgsz)`. With `fp16_path`, also writes an FP16-weight copy with FP32 I/O and compares it with the
    FP32 graph. `metadata` (pipeline/io/file_metadata.py:
    class names, image size, ...) is written into both files' metadata_props.

    Returns {path, opset, size_bytes, parity: {boxes, scores} (max abs diff vs torch), seconds,
    [fp16_path, fp16_size_bytes, fp16_diff: {boxes, scores}]}.
    """
    if imgsz % 32:
        raise ValueError(f"imgsz must be a multiple of 32, got {imgsz}")
    path = Path(path)
    t0 = time.perf_counter()
    model = model.eval().float().cpu()
    proto = _torch_to_onnx(model, imgsz, opset, dynamic_batch)
    if simplify:
        proto = simplify_onnx(proto, path)
    check_onnx(proto, path)
    names = [o.name for o in proto.graph.output]
    if names != list(OUTPUT_NAMES) or proto.graph.input[0].name != INPUT_NAME:
        raise ExportError(f"{path}: expected input {INPUT_NAME!r} and outputs {OUTPUT_NAMES}, got {names}")
    x = parity_input(imgsz, batch=2 if dynamic_batch else 1)
    with torch.no_grad():
        ref = [t.numpy() for t in model(torch.from_numpy(x))]
    got = run_onnx(proto, x)  # checked in memory: a graph that fails parity never replaces the file on disk
    parity = {n: _max_abs(got[n], r) for n, r in zip(OUTPUT_NAMES, ref)}
    check_parity("onnx_fp32", parity, imgsz, path)
    if metadata:
        set_onnx_metadata(proto, metadata)
    save_onnx(proto, path)
    result = {
        "path": str(path), "opset": opset, "size_bytes": path.stat().st_size, "parity": parity,
        "simplified": simplify, "dynamic_batch": dynamic_batch,
    }
    if fp16_path is not None:
        fp16_path = Path(fp16_path)
        try:
            half = to_fp16(proto)
        except Exception as e:
            raise ExportError(f"{fp16_path}: FP16 conversion of {path} failed: {e}") from e
        check_onnx(half, fp16_path)
        got16 = run_onnx(half, x)
        fp16_diff = {n: _max_abs(got16[n], got[n]) for n in OUTPUT_NAMES}
        check_parity("onnx_fp16", fp16_diff, imgsz, fp16_path)
        if metadata:
            set_onnx_metadata(half, metadata)
        save_onnx(half, fp16_path)
        result.update(fp16_path=str(fp16_path), fp16_size_bytes=fp16_path.stat().st_size, fp16_diff=fp16_diff)
    result["seconds"] = time.perf_counter() - t0
    return result
