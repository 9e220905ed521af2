"""Exact rewrites of the FP32 ONNX graph before onnx2tf (the ONNX files we ship are not changed).

1. Constant nodes become initializers, and a float scalar consumed only by elementwise ops becomes shape
   [1]: onnx2tf 1.28's strict-mode accuracy correction crashes on a scalar Constant operand of Mul
   ("Output tensors of a Functional model must be the output of a TensorFlow Layer. Found: 16.0").
2. Scalar multipliers after a Conv are folded into its weights: `Conv -> Mul(c)` and
   `Conv -> Relu -> Mul(c > 0)` (the head's `relu(scale * box) * stride`). Otherwise TFLite's full-INT8
   converter gives the pre-multiply tensor the scale of the final `boxes` output (concat and reshape share
   scales), e.g. 0.27 px steps on values ~2 before `* 32`: ~4 px box error at stride 32. Strides are
   powers of two, so the folded weights are exact.
3. `HardSigmoid(a, b)` (the squeeze-excite and micro-attention gates) becomes `Relu6(6a*x + 6b) * (1/6)`,
   with the `6a*x + 6b` folded into the producing Conv when the Conv feeds only the gate. onnx2tf turns
   HardSigmoid into TFLite's RELU_0_TO_1, which TensorFlow Lite Micro has no kernel for; Clip(0, 6) becomes
   RELU6, which every runtime has and the converter fuses into the Conv.
4. A stride-2 convolution with an odd k x k kernel, padded k // 2 on every side of an even input (PyTorch's
   `padding=k // 2`), converts to an explicit PAD (a padded copy of its input) and a VALID convolution. Where
   that PAD's input and output together are the largest activations any op of the graph holds at once, they
   set TensorFlow Lite Micro's tensor arena; such a convolution instead gets a (k + 1) x (k + 1) kernel whose
   last row and column are zeros, same pads. Its outputs are the same numbers (the added taps multiply zeros,
   and the bottom and right padding the old kernel never reached is what they read), and the padding is now
   TensorFlow's SAME for that kernel, so onnx2tf emits one CONV_2D / DEPTHWISE_CONV_2D with no PAD. Only
   those convolutions: a wider kernel costs arithmetic (XNNPACK has no fast path for it), the rest keep
   theirs.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

_ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"}


WIDEN = ("peak", "all", "none")  # rewrite 4 on: the convolution whose PAD sets the arena, every one it applies to, none


def prepare_for_onnx2tf(model: onnx.ModelProto, widen: str = "peak") -> onnx.ModelProto:
    """Return a rewritten copy of `model` (see the module docstring); outputs are mathematically unchanged. `widen`:
    which stride-2 convolutions rewrite 4 changes (WIDEN; the pipeline uses "peak", the others are for studies)."""
    return _prepare(model, widen)[0]


def widened_convs(model: onnx.ModelProto, widen: str = "peak") -> list[str]:
    """The names of the convolutions rewrite 4 gives a wider kernel when `model` is prepared with `widen`."""
    return _prepare(model, widen)[1]


def _prepare(model: onnx.ModelProto, widen: str) -> tuple[onnx.ModelProto, list[str]]:
    if widen not in WIDEN:
        raise ValueError(f"widen must be one of {WIDEN}, got {widen!r}")
    model = onnx.ModelProto.FromString(model.SerializeToString())
    _constants_to_initializers(model.graph)
    while _fold_one_scalar_mul(model.graph):
        pass
    _lower_hard_sigmoid(model.graph)
    widened = _pad_free_stride2(model, widen)
    _drop_unused_initializers(model.graph)
    return model, widened


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    out: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    for o in graph.output:
        out.setdefault(o.name, []).append(None)  # a graph output counts as a use
    return out


def _constants_to_initializers(graph: onnx.GraphProto) -> None:
    uses = _consumers(graph)
    keep = []
    for node in graph.node:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type != "Constant" or set(attrs) != {"value"}:
            keep.append(node)
            continue
        arr = numpy_helper.to_array(attrs["value"].t)
        ops = {n.op_type if n is not None else None for n in uses.get(node.output[0], [])}
        if arr.ndim == 0 and arr.dtype.kind == "f" and ops and ops <= _ELEMENTWISE:
            arr = arr.reshape(1)
        graph.initializer.append(numpy_helper.from_array(arr, node.output[0]))
    del graph.node[:]
    graph.node.extend(keep)


def _scalar(graph: onnx.GraphProto, name: str) -> float | None:
    for init in graph.initializer:
        if init.name == name:
            arr = numpy_helper.to_array(init)
            return float(arr.reshape(-1)[0]) if arr.size == 1 and arr.dtype.kind == "f" else None
    return None


def _fold_one_scalar_mul(graph: onnx.GraphProto) -> bool:
    """Fold one `Conv [-> Relu] -> Mul(scalar)` chain; True when something was folded."""
    uses = _consumers(graph)
    producer = {o: n for n in graph.node for o in n.output}
    inits = {i.name: i for i in graph.initializer}
    for mul in graph.node:
        if mul.op_type != "Mul":
            continue
        for k in (0, 1):
            c = _scalar(graph, mul.input[1 - k])
            prev = producer.get(mul.input[k])
            if c is None or prev is None or len(uses[prev.output[0]]) != 1:
                continue
            via_relu = prev.op_type == "Relu"
            if via_relu and c <= 0:
                continue
            conv = producer.get(prev.input[0]) if via_relu else prev
            if conv is None or conv.op_type != "Conv" or conv.input[1] not in inits:
                continue
            if via_relu and len(uses[conv.output[0]]) != 1:
                continue
            if len(conv.input) > 2 and conv.input[2] not in inits:
                continue
            _scale_conv(graph, conv, inits, c)
            prev.output[0] = mul.output[0]
            graph.node.remove(mul)
            return True
    return False


def _scale_conv(graph: onnx.GraphProto, conv: onnx.NodeProto, inits: dict, c: float) -> None:
    """Give `conv` its own weight (and bias) initializers multiplied by `c` (shared ones are left as they are)."""
    for slot in range(1, min(len(conv.input), 3)):
        arr = numpy_helper.to_array(inits[conv.input[slot]])
        name = f"{conv.input[slot]}_x{c:g}_{conv.name or conv.output[0]}"
        graph.initializer.append(numpy_helper.from_array((arr * np.asarray(c, arr.dtype)).astype(arr.dtype), name))
        conv.input[slot] = name


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def _lower_hard_sigmoid(graph: onnx.GraphProto) -> None:
    """Replace every HardSigmoid by [Conv-folded or Mul/Add] affine -> Clip(0, 6) -> Mul(1/6), in place."""
    nodes = list(graph.node)
    if not any(n.op_type == "HardSigmoid" for n in nodes):
        return
    uses = _consumers(graph)
    producer = {o: n for n in nodes for o in n.output}
    inits = {i.name: i for i in graph.initializer}
    out: list[onnx.NodeProto] = []
    for node in nodes:
        if node.op_type != "HardSigmoid":
            out.append(node)
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        scale, shift = 6.0 * attrs.get("alpha", 0.2), 6.0 * attrs.get("beta", 0.5)
        x, tag = node.input[0], node.name or node.output[0]
        conv = producer.get(x)
        if (conv is not None and conv.op_type == "Conv" and len(uses[x]) == 1 and conv.input[1] in inits
                and (len(conv.input) < 3 or conv.input[2] in inits)):
            _affine_conv(graph, conv, inits, scale, shift, tag)
        else:
            for op, value in (("Mul", scale), ("Add", shift)):
                if value != (1.0 if op == "Mul" else 0.0):
                    const = f"{tag}_{op.lower()}"
                    graph.initializer.append(numpy_helper.from_array(np.asarray([value], np.float32), const))
                    out.append(onnx.helper.make_node(op, [x, const], [f"{const}_out"], name=f"{tag}_{op}"))
                    x = f"{const}_out"
        lo, hi = f"{tag}_clip_min", f"{tag}_clip_max"
        graph.initializer.extend([numpy_helper.from_array(np.asarray(0.0, np.float32), lo),
                                  numpy_helper.from_array(np.asarray(6.0, np.float32), hi)])
        sixth = f"{tag}_sixth"
        graph.initializer.append(numpy_helper.from_array(np.asarray([1.0 / 6.0], np.float32), sixth))
        out.append(onnx.helper.make_node("Clip", [x, lo, hi], [f"{tag}_relu6"], name=f"{tag}_Relu6"))
        out.append(onnx.helper.make_node("Mul", [f"{tag}_relu6", sixth], list(node.output), name=f"{tag}_Sixth"))
    del graph.node[:]
    graph.node.extend(out)


def _affine_conv(graph: onnx.GraphProto, conv: onnx.NodeProto, inits: dict, scale: float, shift: float,
                 tag: str) -> None:
    """Give `conv` its own weight and bias initializers computing `scale * conv(x) + shift`."""
    w = numpy_helper.to_array(inits[conv.input[1]])
    b = numpy_helper.to_array(inits[conv.input[2]]) if len(conv.input) > 2 else np.zeros(w.shape[0], w.dtype)
    w_name, b_name = f"{conv.input[1]}_hs_{tag}", f"{tag}_hs_bias"
    graph.initializer.append(numpy_helper.from_array((w * np.asarray(scale, w.dtype)).astype(w.dtype), w_name))
    graph.initializer.append(numpy_helper.from_array((b * np.asarray(scale, b.dtype) + np.asarray(shift, b.dtype))
                                                     .astype(b.dtype), b_name))
    conv.input[1] = w_name
    if len(conv.input) > 2:
        conv.input[2] = b_name
    else:
        conv.input.append(b_name)


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """The shape of every tensor whose dimensions ONNX shape inference knows (recorded shapes are dropped first:
    the rewrites above change some, e.g. scalars made [1])."""
    bare = onnx.ModelProto.FromString(model.SerializeToString())
    del bare.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(bare, strict_mode=True).graph
    out = {}
    for v in [*inferred.input, *inferred.value_info, *inferred.output]:
        dims = v.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            out[v.name] = [d.dim_value for d in dims]
    return out


def _widened_kernel(kernel: list[int], strides: list[int], pads: list[int], dilations: list[int],
                   hw: list[int] | None) -> int | None:
    """Rewrite 4's kernel size for a convolution of this geometry (pads as ONNX lists them, begins then ends), or
    None where the rewrite does not apply (its outputs would change)."""
    k = kernel[0]
    if (len(kernel) != 2 or kernel[1] != k or k % 2 == 0 or list(strides) != [2, 2] or list(dilations) != [1, 1]
            or list(pads) != [k // 2] * 4 or hw is None or hw[0] % 2 or hw[1] % 2):
        return None
    return k + 1


def _pad_free_stride2(model: onnx.ModelProto, widen: str = "peak") -> list[str]:
    """Rewrite 4 of the module docstring, in place; returns the names of the convolutions it changed."""
    if widen == "none":
        return []
    graph = model.graph
    shapes, uses = _shapes(model), _consumers(graph)
    inits = {i.name: i for i in graph.initializer}

    def size(name: str) -> int:
        return int(np.prod(shapes[name])) if name in shapes else 0

    held, candidates = 0, []  # the most activation values one op holds at once; the convolutions that may change
    for node in graph.node:
        held = max(held, sum(size(i) for i in node.input if i and i not in inits) + sum(map(size, node.output)))
        if node.op_type != "Conv" or node.input[1] not in inits or len(uses[node.input[1]]) != 1:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        w = numpy_helper.to_array(inits[node.input[1]])
        shape = shapes.get(node.input[0])
        if w.ndim != 4 or shape is None or len(shape) != 4 or attrs.get("auto_pad", b"NOTSET") != b"NOTSET":
            continue
        pads = list(attrs.get("pads", [0] * 4))
        wide = _widened_kernel(list(w.shape[2:]), attrs.get("strides", [1, 1]), pads, attrs.get("dilations", [1, 1]),
                              shape[2:])
        if wide is not None:
            padded = shape[1] * (shape[2] + pads[0] + pads[2]) * (shape[3] + pads[1] + pads[3])
            candidates.append((size(node.input[0]) + padded, node, w, wide))
    changed = []
    for pad_pair, conv, w, wide in candidates:
        if pad_pair <= held and widen == "peak":
            continue
        k = w.shape[2]
        padded_w = np.zeros((*w.shape[:2], wide, wide), w.dtype)
        padded_w[:, :, :k, :k] = w
        inits[conv.input[1]].CopyFrom(numpy_helper.from_array(padded_w, conv.input[1]))
        for a in conv.attribute:
            if a.name == "kernel_shape":
                a.ints[:] = [wide, wide]
        changed.append(conv.name)
    return changed
