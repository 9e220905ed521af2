"""Where the bytes of a .tflite file go, and the bytes LiteRT never reads, removed with outputs unchanged.

`size_breakdown` splits a file into the int8 weights and int32 biases of its convolutions, other constant
buffers, quantisation tables (a float32 scale and an int64 zero point per channel, on weights and again on
biases), tensor names, and the graph structure (everything else: operators, options, offsets, padding).

`strip_tflite` rewrites a file without what the interpreter does not need to run it: tensor names (signature keys,
which callers use, are kept) and the converter's metadata. The result is checked by running both files on the same
images: its outputs must be bit-identical, or the stripped file is refused. Measured on the default model, and kept
out on purpose: LiteRT refuses per-channel weights with one zero point instead of one per channel ("Must have same
number"), and dropping the bias quantisation changes the outputs (max diff 3.2), so the quantisation tables stay.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.io.tflite_file import read_model, schema, write_model

FILTER_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")
STRIP_CHECK = 32  # images both files run on before the stripped one replaces the converted one
KEEP_METADATA = (b"min_runtime_version",  # read by the runtime to refuse a model newer than itself
                 b"leafyolo")  # ours: class names, image size, input quantisation (pipeline/io/file_metadata.py)


def _op_names(model: Any) -> list[str]:
    by_code = {v: k for k, v in vars(schema().BuiltinOperator).items() if not k.startswith("_")}
    return [by_code.get(max(c.builtinCode, c.deprecatedBuiltinCode), "CUSTOM") for c in model.operatorCodes]


def op_types(path: str | Path) -> set[str]:
    """The builtin operator names a .tflite file uses (e.g. {"CONV_2D", "ADD"})."""
    return set(_op_names(read_model(path)))


def _roles(model: Any) -> dict[int, str]:
    """Buffer index -> 'weights' or 'biases' for the filters and biases of convolution-like operators."""
    names = _op_names(model)
    roles: dict[int, str] = {}
    for sg in model.subgraphs:
        for op in sg.operators:
            if names[op.opcodeIndex] not in FILTER_OPS:
                continue
            inputs = list(op.inputs)
            for pos, role in ((1, "weights"), (2, "biases")):
                if pos < len(inputs) and inputs[pos] >= 0:
                    roles[sg.tensors[inputs[pos]].buffer] = role
    return roles


def _quant_bytes(tensor: Any) -> int:
    q = tensor.quantization
    if q is None:
        return 0
    n = 0
    for values, width in ((q.scale, 4), (q.zeroPoint, 8), (q.min, 4), (q.max, 4)):
        if values is not None:
            n += len(values) * width
    return n


def size_breakdown(path: str | Path) -> dict[str, Any]:
    """{total, parts: {weights, biases, constants, quantization, names, metadata, structure} in bytes, percent, params,
    bytes_per_param}; `params` counts the weight and bias elements (what a framework calls parameters, with the
    batch-norm folded in)."""
    model = read_model(path)
    total = Path(path).stat().st_size
    roles = _roles(model)
    parts = dict.fromkeys(("weights", "biases", "constants", "quantization", "names", "metadata"), 0)
    params = 0
    for m in model.metadata or []:  # the entries' buffers (ours: class names, image size, input quantisation)
        roles[m.buffer] = "metadata"
    for index, buffer in enumerate(model.buffers):
        size = len(buffer.data) if buffer.data is not None else 0
        if size:
            parts[roles.get(index, "constants")] += size
    for sg in model.subgraphs:
        for t in sg.tensors:
            parts["quantization"] += _quant_bytes(t)
            parts["names"] += len(t.name or b"")
            if roles.get(t.buffer) in ("weights", "biases"):
                params += int(np.prod(t.shape))
    parts["structure"] = total - sum(parts.values())
    return {"total": total, "parts": parts, "percent": {k: 100.0 * v / total for k, v in parts.items()},
            "params": params, "bytes_per_param": total / max(params, 1)}


def format_breakdown(size: dict[str, Any]) -> str:
    """`weights 520,348 B (67.1 %), biases ...`: one line for logs and `leafyolo info`."""
    parts = ", ".join(f"{k} {v:,} B ({size['percent'][k]:.1f} %)" for k, v in size["parts"].items())
    return f"{parts}; {size['params']:,} weight and bias values, {size['bytes_per_param']:.3f} bytes per value"


def strip_model(model: Any) -> dict[str, int]:
    """Remove, in place, what the interpreter does not read; returns how many items of each kind went."""
    removed = {"names": 0, "metadata": 0}
    for sg in model.subgraphs:
        for t in sg.tensors:
            if t.name:
                t.name = b""
                removed["names"] += 1
    if model.metadata:
        kept = [m for m in model.metadata if m.name in KEEP_METADATA]
        dropped = [m for m in model.metadata if m.name not in KEEP_METADATA]
        for m in dropped:
            model.buffers[m.buffer].data = None
        model.metadata = kept
        removed["metadata"] = len(dropped)
    return removed


def strip_tflite(src: str | Path, dst: str | Path, check_images: np.ndarray, micro: bool = True) -> dict[str, Any]:
    """Write `src` without unread bytes to `dst` (atomically) after checking that LiteRT (and with `micro`,
    TensorFlow Lite Micro) gives bit-identical outputs on `check_images` (float NCHW [0, 1]); any difference raises
    ExportError and writes nothing."""
    from pipeline.export.common import ExportError
    from pipeline.infer.backends import TFLiteBackend
    from pipeline.infer.tflm import ARENA_CEILING, TFLMBackend
    from pipeline.io.atomic import atomic_write_bytes

    size_before = Path(src).stat().st_size  # before `dst`, which may be `src`, is replaced
    model = read_model(src)
    removed = strip_model(model)
    data = write_model(model)
    tmp = Path(f"{dst}.check.tflite")
    tmp.write_bytes(data)
    try:
        def micro_backend(path: Path) -> TFLMBackend:  # the check needs a roomy arena, not the smallest one
            try:
                return TFLMBackend(path, arena_size=ARENA_CEILING)
            except RuntimeError as e:
                raise ExportError(f"{src} does not run under TensorFlow Lite Micro: {e}") from e

        runtimes = [("LiteRT", TFLiteBackend)] + ([("TFLM", micro_backend)] if micro else [])
        for runtime, backend in runtimes:
            before, after = backend(src), backend(tmp)
            for i in range(len(check_images)):
                x = check_images[i:i + 1]
                for a, b in zip(before(x), after(x)):
                    if not np.array_equal(a, b):
                        raise ExportError(f"{src}: stripping changed {runtime}'s outputs (max diff "
                                          f"{float(np.abs(a - b).max()):.3g}); kept the file as converted")
    finally:
        tmp.unlink(missing_ok=True)
    atomic_write_bytes(dst, data)
    return {"removed": removed, "size_before": size_before, "size_after": len(data)}
