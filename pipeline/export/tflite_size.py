"""Where the bytes of a .tflite file go, and the bytes LiteRT never reads, removed with outputs unchanged.

`size_breakdown` splits a file into the int8 weights and int32 biases of its convolutions, other constant
buffers, quantisation tables (a float32 scale and an int64 zero point per channel, on weights and again on
biases), tensor names, and the graph structure (everything else: operators, options, offsets, padding).

`strip_tflite` rewrites a file without what the interpreter does not need to run it: tensor names (signature keys,
which callers use, are kept), the converter's metadata and the empty buffer each activation tensor gets (they all
point at the empty buffer 0 instead), and writes every distinct vector once (pipeline/io/tflite_file.py: the int64
zero points of all per-channel tensors of one width are one array). The result is checked by running both files on
the same images: its outputs must be bit-identical, or the stripped file is refused. Measured on the default model,
and kept out on purpose: LiteRT refuses per-channel weights with one zero point instead of one per channel ("Must have same
number"), and dropping the bias quantisation changes the outputs (max diff 3.2), so the quantisation tables stay.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.io.tflite_file import read_model, read_root, schema, write_model

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


def operator_names(model: Any, subgraph: int = 0) -> list[str]:
    """The builtin name of each operator of `model`'s subgraph, in run order (e.g. ["PAD", "CONV_2D", ...])."""
    names = _op_names(model)
    return [names[op.opcodeIndex] for op in model.subgraphs[subgraph].operators]


def op_counts(path: str | Path) -> dict[str, int]:
    """How many operators of each builtin name the file's subgraphs run (e.g. {"CONV_2D": 60, "PAD": 5})."""
    model = read_model(path)
    counts: dict[str, int] = {}
    for g in range(len(model.subgraphs)):
        for name in operator_names(model, g):
            counts[name] = counts.get(name, 0) + 1
    return counts


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


# Vector fields by their slot in the schema's tables (schema.fbs field order).
_BUFFER_DATA = 0
_TENSOR_NAME = 3
_QUANT_VECTORS = ((0, 4), (1, 4), (2, 4), (3, 8))  # QuantizationParameters min, max, scale (float32), zero_point (int64)


def _span(table: Any, slot: int, width: int) -> tuple[int, int] | None:
    """(position in the file, bytes) of a table's vector field, or None when the field is absent: where the file
    stores it, so a vector shared by several tables is counted once."""
    offset = table._tab.Offset(4 + 2 * slot)
    if not offset:
        return None
    return table._tab.Vector(offset), table._tab.VectorLen(offset) * width


def size_breakdown(path: str | Path) -> dict[str, Any]:
    """{total, parts: {weights, biases, constants, quantization, names, metadata, structure} in bytes, percent, params,
    bytes_per_param}; `params` counts the weight and bias elements (what a framework calls parameters, with the
    batch-norm folded in). Each vector is counted once where the file stores it (tables may share one)."""
    model, root = read_model(path), read_root(path)
    total = Path(path).stat().st_size
    roles = _roles(model)
    for m in model.metadata or []:  # the entries' buffers (ours: class names, image size, input quantisation)
        roles[m.buffer] = "metadata"
    spans: dict[tuple[int, int], str] = {}
    for index in range(root.BuffersLength()):
        span = _span(root.Buffers(index), _BUFFER_DATA, 1)
        if span and span[1]:
            spans.setdefault(span, roles.get(index, "constants"))
    params = 0
    for g in range(root.SubgraphsLength()):
        sg = root.Subgraphs(g)
        for i in range(sg.TensorsLength()):
            t = sg.Tensors(i)
            name = _span(t, _TENSOR_NAME, 1)
            if name:
                spans.setdefault(name, "names")
            q = t.Quantization()
            for slot, width in _QUANT_VECTORS if q is not None else ():
                span = _span(q, slot, width)
                if span:
                    spans.setdefault(span, "quantization")
            if roles.get(t.Buffer()) in ("weights", "biases"):
                params += int(np.prod(t.ShapeAsNumpy()))
    parts = dict.fromkeys(("weights", "biases", "constants", "quantization", "names", "metadata"), 0)
    for (_, nbytes), part in spans.items():
        parts[part] += nbytes
    parts["structure"] = total - sum(parts.values())
    return {"total": total, "parts": parts, "percent": {k: 100.0 * v / total for k, v in parts.items()},
            "params": params, "bytes_per_param": total / max(params, 1)}


def format_breakdown(size: dict[str, Any]) -> str:
    """`weights 520,348 B (67.1 %), biases ...`: one line for logs and `leafyolo info`."""
    parts = ", ".join(f"{k} {v:,} B ({size['percent'][k]:.1f} %)" for k, v in size["parts"].items())
    return f"{parts}; {size['params']:,} weight and bias values, {size['bytes_per_param']:.3f} bytes per value"


def strip_model(model: Any) -> dict[str, int]:
    """Remove, in place, what the interpreter does not read; returns how many items of each kind went."""
    removed = {"names": 0, "metadata": 0, "empty_buffers": 0}
    for sg in model.subgraphs:
        for t in sg.tensors:
            removed["names"] += bool(t.name)
            t.name = None  # not even an empty string: the runtimes read a missing name as ""
    if model.metadata:
        kept = [m for m in model.metadata if m.name in KEEP_METADATA]
        dropped = [m for m in model.metadata if m.name not in KEEP_METADATA]
        for m in dropped:
            model.buffers[m.buffer].data = None
        model.metadata = kept
        removed["metadata"] = len(dropped)
    removed["empty_buffers"] = _share_empty_buffer(model)
    return removed


def _empty(buffer: Any) -> bool:
    return (buffer.data is None or len(buffer.data) == 0) and not buffer.offset and not buffer.size


def _share_empty_buffer(model: Any) -> int:
    """Point every tensor without constant data at buffer 0 (the schema's empty sentinel) and drop the other empty
    buffers, renumbering the rest; returns how many went. Leaves the file as is when buffer 0 is not empty. A buffer
    a metadata entry names stays, empty or not (the entry keeps its own buffer)."""
    if not model.buffers or not _empty(model.buffers[0]):
        return 0
    named = {m.buffer for m in model.metadata or []}
    keep = [0] + [i for i, b in enumerate(model.buffers) if i and (not _empty(b) or i in named)]
    index = {old: new for new, old in enumerate(keep)}
    for sg in model.subgraphs:
        for t in sg.tensors:
            t.buffer = index.get(t.buffer, 0)
    for m in model.metadata or []:
        m.buffer = index[m.buffer]
    dropped = len(model.buffers) - len(keep)
    model.buffers = [model.buffers[i] for i in keep]
    return dropped


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
