"""onnx2tf full-INT8 TFLite: int8 I/O, output mapping, closeness to the FP32 ONNX, no network, clear failures.

One real conversion (~40 s on 2 CPU cores, the session fixture `converted` of conftest.py); leafyolo_u, nc=3, 64 px.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from pipeline.compress.bytes_model import conv_totals
from pipeline.export.common import ExportError
from pipeline.export.graph_prep import prepare_for_onnx2tf, widened_convs
from pipeline.export.onnx_export import run_onnx
from pipeline.export.tflite_export import SAMPLE_FILE, export_tflite_int8
from pipeline.infer.backends import TFLiteBackend, match_outputs
from pipeline.infer.tflm import TFLMBackend
from tests.test_export_onnx import IMGSZ, N_ANCHORS, NC, make_model


def test_full_int8_file_with_int8_io(converted):
    info, d, _ = converted
    path = d / "out" / "model_int8.tflite"
    assert info["path"] == str(path) and info["size_bytes"] == path.stat().st_size > 100_000
    print(f"INT8 TFLite size: {info['size_bytes']} bytes")
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    inp = interp.get_input_details()[0]
    assert inp["dtype"] == np.int8 and list(inp["shape"]) == [1, IMGSZ, IMGSZ, 3]  # NHWC
    assert all(o["dtype"] == np.int8 for o in interp.get_output_details())
    # [0, 1] input calibrated -> scale 1/255, zero point -128: int8 = uint8 pixel - 128
    assert info["input"]["scale"] == pytest.approx(1 / 255) and info["input"]["zero_point"] == -128
    assert (d / "work" / SAMPLE_FILE).is_file()  # onnx2tf read OUR images instead of downloading


def test_output_mapping_and_layout(converted):
    info, d, calib = converted
    outs = info["outputs"]
    assert outs["boxes"]["shape"] == [1, N_ANCHORS, 4] and outs["scores"]["shape"] == [1, N_ANCHORS, NC]
    assert not outs["boxes"]["transposed"] and not outs["scores"]["transposed"]
    assert sorted(info["output_order"]) == ["boxes", "scores"]
    backend = TFLiteBackend(info["path"])
    boxes, scores = backend(calib[:2])
    assert backend.order == (outs["boxes"]["position"], outs["scores"]["position"])
    assert scores.shape == (2, N_ANCHORS, NC) and boxes.shape == (2, N_ANCHORS, 4)
    assert scores.min() >= 0 and scores.max() <= 1
    assert outs["scores"]["scale"] == pytest.approx(1 / 256, rel=0.05)


def test_int8_tflite_close_to_fp32_onnx(converted):
    info, d, calib = converted
    ref = run_onnx(d / "model.onnx", calib)
    boxes, scores = TFLiteBackend(info["path"])(calib)
    assert np.abs(scores - ref["scores"]).max() < 0.1
    assert np.abs(boxes - ref["boxes"]).max() < 2.0  # pixels
    assert info["float32_diff"]["boxes"]["max_abs_diff"] < 1e-3
    assert info["float32_diff"]["scores"]["max_abs_diff"] < 1e-4


def test_equal_shaped_outputs_without_names_are_matched_by_value_range():
    """nc == 4: boxes and scores have the same shape; sigmoid scores lie in [0, 1], pixel boxes do not."""
    rng = np.random.default_rng(0)
    boxes, scores = rng.random((1, 84, 4)) * 60 + 5, rng.random((1, 84, 4))
    (b, s_), order = match_outputs([scores, boxes], ["PartitionedCall:0", "PartitionedCall:1"], 84)
    assert order == (1, 0) and np.allclose(b, boxes) and np.allclose(s_, scores)
    (b, s_), order = match_outputs([boxes, scores.transpose(0, 2, 1)], ["a", "b"], 84)
    assert order == (0, 1) and np.allclose(s_, scores)


def test_graph_prep_is_exact(converted):
    _, d, calib = converted
    proto = onnx.load(str(d / "model.onnx"))
    prepared = prepare_for_onnx2tf(proto)
    onnx.checker.check_model(prepared, full_check=True)
    assert not any(n.op_type in ("Constant", "Mul") and n.name.startswith("/head/") for n in prepared.graph.node)
    a, b = run_onnx(proto, calib[:2]), run_onnx(prepared, calib[:2])
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-6, atol=1e-5)


def test_the_pad_that_set_the_arena_is_gone_and_only_it(converted):
    """The stride-4 expansion's depthwise convolution (its padded input copy was the largest pair of activations
    any op held) converts with no PAD; the other stride-2 convolutions keep theirs (a wider kernel is slower)."""
    from pipeline.export.tflite_size import op_counts

    info, d, _ = converted
    source = onnx.load(str(d / "model.onnx"))
    strided = sum(1 for n in source.graph.node if n.op_type == "Conv"
                  and any(a.name == "strides" and list(a.ints) == [2, 2] for a in n.attribute))
    assert widened_convs(source) == ["/backbone/stage3/stage3.0/dw/dw.0/Conv"]
    assert op_counts(info["path"]).get("PAD", 0) == strided - 1 > 0


def _strided_conv(size: int, k: int = 3, group: int = 1, pads: int | None = None) -> onnx.ModelProto:
    """images [1, 4, size, size] -> one stride-2 k x k Conv (4 -> 6 channels, or depthwise with group 4)."""
    rng = np.random.default_rng(k)
    cout = 4 if group == 4 else 6
    w = helper.make_tensor("w", TensorProto.FLOAT, [cout, 4 // group, k, k], rng.standard_normal((cout, 4 // group, k, k))
                           .astype(np.float32).ravel())
    b = helper.make_tensor("b", TensorProto.FLOAT, [cout], rng.standard_normal(cout).astype(np.float32))
    p = k // 2 if pads is None else pads
    node = helper.make_node("Conv", ["images", "w", "b"], ["y"], kernel_shape=[k, k], strides=[2, 2], pads=[p] * 4,
                            group=group, name="strided")
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 4, size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return helper.make_model(helper.make_graph([node], "g", [x], [y], [w, b]), ir_version=8,
                             opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("k, group", [(3, 1), (3, 4), (5, 1)])
def test_stride2_padding_becomes_a_wider_kernel_with_the_same_outputs(k, group):
    model = _strided_conv(16, k, group)
    prepared = prepare_for_onnx2tf(model)
    (conv,) = prepared.graph.node
    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    assert attrs["kernel_shape"] == [k + 1, k + 1] and attrs["pads"] == [k // 2] * 4
    w = onnx.numpy_helper.to_array(next(i for i in prepared.graph.initializer if i.name == conv.input[1]))
    assert not w[:, :, k, :].any() and not w[:, :, :, k].any()  # the added taps are zeros
    x = np.random.default_rng(1).random((2, 4, 16, 16), np.float32)
    a, b = run_onnx(model, x), run_onnx(prepared, x)
    assert a["y"].shape == (2, 6 if group == 1 else 4, 8, 8)
    np.testing.assert_array_equal(b["y"], a["y"])


def test_a_strided_conv_whose_pad_is_not_the_peak_keeps_its_kernel():
    """A 1x1 convolution after it holds more activations than the PAD would (48 channels out of 4): no rewrite."""
    model = _strided_conv(16)
    w = helper.make_tensor("w2", TensorProto.FLOAT, [48, 6, 1, 1], np.ones(48 * 6, np.float32))
    model.graph.initializer.append(w)
    model.graph.node.append(helper.make_node("Conv", ["y", "w2"], ["z"], kernel_shape=[1, 1], name="pointwise"))
    model.graph.output[0].name = "z"
    assert widened_convs(model) == [] and widened_convs(model, "all") == ["strided"]
    with pytest.raises(ValueError, match="widen must be one of"):
        prepare_for_onnx2tf(model, "every")
    del model.graph.node[1]
    model.graph.output[0].name = "y"
    assert widened_convs(model) == ["strided"]


@pytest.mark.parametrize("size, pads", [(15, None), (16, 0), (16, 2)])
def test_stride2_rewrite_leaves_odd_inputs_and_other_padding_alone(size, pads):
    """An odd input (the bottom padding row is read) or padding other than k // 2 would change the outputs."""
    prepared = prepare_for_onnx2tf(_strided_conv(size, 3, 1, pads))
    (conv,) = prepared.graph.node
    assert [list(a.ints) for a in conv.attribute if a.name == "kernel_shape"] == [[3, 3]]


def _unsupported_model(path):
    """Valid ONNX (checker passes) with an op onnx2tf 1.28 does not implement (LpPool)."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, IMGSZ, IMGSZ])
    y = helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 3, IMGSZ // 2, IMGSZ // 2])
    node = helper.make_node("LpPool", ["images"], ["boxes"], kernel_shape=[2, 2], strides=[2, 2], p=2)
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def test_onnx2tf_failure_raises_and_keeps_existing_output(converted, tmp_path):
    info, _, calib = converted
    out = tmp_path / "out"
    out.mkdir()
    (out / "model_int8.tflite").write_bytes(b"previous good model")
    _unsupported_model(tmp_path / "nonsense.onnx")
    with pytest.raises(ExportError, match=r"nonsense\.onnx(.|\n)*LpPool"):
        export_tflite_int8(tmp_path / "nonsense.onnx", out, calib[:2])
    assert (out / "model_int8.tflite").read_bytes() == b"previous good model"
    assert sorted(p.name for p in out.iterdir()) == ["model_int8.tflite"]


def test_truncated_onnx_raises_naming_file(converted, tmp_path):
    info, d, calib = converted
    data = (d / "model.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ExportError, match="cut.onnx"):
        export_tflite_int8(tmp_path / "cut.onnx", tmp_path / "out", calib[:2])
    assert not (tmp_path / "out").exists()


def test_size_breakdown_accounts_for_every_byte(converted):
    from pipeline.export.tflite_size import FILTER_OPS, _op_names, size_breakdown
    from pipeline.io.tflite_file import read_model

    info, d, _ = converted
    size = size_breakdown(info["path"])
    assert sum(size["parts"].values()) == size["total"] == Path(info["path"]).stat().st_size
    assert size["parts"]["weights"] > size["parts"]["biases"] > 0 and size["parts"]["quantization"] > 0
    assert size["parts"]["names"] > 0 and size["parts"]["structure"] > 0
    assert sum(size["percent"].values()) == pytest.approx(100.0)
    # every conv call of the model is in the file with its weights and one bias per output channel (batch norms
    # folded; each head level calls the shared convs and output convs once), and `params` counts each tensor once
    # where several operators read it (the converter keeps one tensor for the levels' identical output-conv weights);
    # the widened convolutions carry graph_prep's added zero taps
    weights, channels = conv_totals(make_model())
    source = onnx.load(str(d / "model.onnx"))
    init = {i.name: int(np.prod(i.dims)) for i in source.graph.initializer}
    wide = {i.name: int(np.prod(i.dims)) for i in prepare_for_onnx2tf(source).graph.initializer}
    changed = widened_convs(source)
    weights += sum(wide[n.input[1]] - init[n.input[1]] for n in source.graph.node if n.name in changed)
    model = read_model(info["path"])
    names, sg = _op_names(model), model.subgraphs[0]
    reads = [i for op in sg.operators if names[op.opcodeIndex] in FILTER_OPS for i in list(op.inputs)[1:3] if i >= 0]
    values = {i: int(np.prod(sg.tensors[i].shape)) for i in reads}
    assert sum(values[i] for i in reads) == weights + channels
    assert size["params"] == sum(values.values()) < weights + channels


def test_stripping_keeps_litert_and_tflm_outputs_bit_identical(converted, tmp_path):
    from pipeline.export.tflite_size import size_breakdown, strip_tflite

    info, _, calib = converted
    out = tmp_path / "stripped.tflite"
    result = strip_tflite(info["path"], out, calib)
    assert result["size_after"] == out.stat().st_size < result["size_before"]
    assert size_breakdown(out)["parts"]["names"] == 0
    for backend in (TFLiteBackend, TFLMBackend):
        a, b = backend(info["path"]), backend(out)
        for x in calib:
            for ya, yb in zip(a(x[None]), b(x[None])):
                assert np.array_equal(ya, yb)


def test_a_kept_metadata_entry_on_an_empty_buffer_keeps_its_buffer(converted):
    from pipeline.export.tflite_size import strip_model
    from pipeline.io.tflite_file import read_model, schema

    info, _, _ = converted
    model = read_model(info["path"])
    empty = schema().BufferT()
    model.buffers.append(empty)
    entry = schema().MetadataT()
    entry.name, entry.buffer = b"leafyolo", len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    removed = strip_model(model)
    assert removed["empty_buffers"] > 0  # the activations' empty buffers still went
    assert model.buffers[entry.buffer] is empty  # renumbered, and still its own buffer
    used = {t.buffer for sg in model.subgraphs for t in sg.tensors}
    assert entry.buffer not in used


def _quant_positions(path) -> dict[int, int]:
    """Position in the file of each tensor's zero-point array -> how many tensors point at it."""
    from pipeline.export.tflite_size import _QUANT_VECTORS, _span
    from pipeline.io.tflite_file import read_root

    sg, counts = read_root(path).Subgraphs(0), {}
    slot, width = _QUANT_VECTORS[3]
    for i in range(sg.TensorsLength()):
        q = sg.Tensors(i).Quantization()
        span = _span(q, slot, width) if q is not None else None
        if span:
            counts[span[0]] = counts.get(span[0], 0) + 1
    return counts


def test_equal_arrays_and_tables_are_written_once(converted, tmp_path):
    """write_model shares equal arrays (zero points, shapes) and repeated tables: a smaller file than the schema's
    own packing with the same tensors, values and outputs, and the size report counts a shared array once."""
    import flatbuffers

    from pipeline.export.tflite_size import size_breakdown, strip_model
    from pipeline.io.tflite_file import read_model, write_model

    info, _, calib = converted
    model = read_model(info["path"])
    strip_model(model)
    plain = flatbuffers.Builder(1024)
    plain.Finish(model.Pack(plain), file_identifier=b"TFL3")
    (tmp_path / "plain.tflite").write_bytes(bytes(plain.Output()))
    (tmp_path / "shared.tflite").write_bytes(write_model(model))
    plain_size, shared_size = size_breakdown(tmp_path / "plain.tflite"), size_breakdown(tmp_path / "shared.tflite")
    assert shared_size["total"] < plain_size["total"] and sum(shared_size["parts"].values()) == shared_size["total"]
    assert shared_size["parts"]["quantization"] < plain_size["parts"]["quantization"]
    shared_zero_points = _quant_positions(tmp_path / "shared.tflite").values()
    assert max(shared_zero_points) > 1 == max(_quant_positions(tmp_path / "plain.tflite").values())
    a, b = read_model(tmp_path / "plain.tflite"), read_model(tmp_path / "shared.tflite")
    for ta, tb in zip(a.subgraphs[0].tensors, b.subgraphs[0].tensors, strict=True):
        assert list(ta.shape) == list(tb.shape) and ta.buffer == tb.buffer and ta.type == tb.type
        if ta.quantization is not None:
            assert np.array_equal(ta.quantization.scale, tb.quantization.scale)
            assert np.array_equal(ta.quantization.zeroPoint, tb.quantization.zeroPoint)
    for backend in (TFLiteBackend, TFLMBackend):
        x, y = backend(tmp_path / "plain.tflite"), backend(tmp_path / "shared.tflite")
        for img in calib[:4]:
            assert all(np.array_equal(u, v) for u, v in zip(x(img[None]), y(img[None])))


def test_per_channel_scales_cost_bytes_per_output_channel(converted, tmp_path):
    """`quant_type`: the default file has one weight scale per filter; per-channel has one per output channel
    (and one per bias value), about 8 more bytes per output channel once stripped."""
    from pipeline.export.tflite_size import _roles, size_breakdown, strip_tflite
    from pipeline.io.tflite_file import read_model

    info, d, calib = converted
    assert info["onnx2tf_options"]["quant_type"] == "per-tensor"
    out = export_tflite_int8(d / "model.onnx", tmp_path, calib, out_path=tmp_path / "pc.tflite", keep_float32=False,
                             quant_type="per-channel")
    assert out["onnx2tf_options"]["quant_type"] == "per-channel"
    widths, shared = {}, {}
    for name, path in (("per-tensor", tmp_path / "pt.tflite"), ("per-channel", tmp_path / "pc.tflite")):
        if name == "per-tensor":
            shutil.copy(info["path"], path)
        strip_tflite(path, path, calib[:2])
        model = read_model(path)
        roles, tensors = _roles(model), model.subgraphs[0].tensors
        weights = [t for t in tensors if roles.get(t.buffer) == "weights"]
        widths[name] = [len(t.quantization.scale) for t in weights]
        # int8 weights the file stores once for several tensors: with per-channel scales, each head level's fused
        # copy of a shared conv differs from the others by a per-output-channel factor only (its folded BatchNorm),
        # so their int8 values are identical and stripping keeps one buffer
        firsts = {t.buffer: t for t in reversed(weights)}
        shared[name] = sum(int(np.prod(t.shape)) for t in weights if firsts[t.buffer] is not t)
    channels = sum(widths["per-channel"])
    assert set(widths["per-tensor"]) == {1} and channels > 2 * len(widths["per-channel"])
    extra = size_breakdown(tmp_path / "pc.tflite")["total"] - size_breakdown(tmp_path / "pt.tflite")["total"]
    assert shared["per-channel"] > shared["per-tensor"]
    assert 7 * channels < extra + shared["per-channel"] - shared["per-tensor"] < 12 * channels
    with pytest.raises(ValueError, match="quant_type must be one of"):
        export_tflite_int8(d / "model.onnx", tmp_path, calib, out_path=tmp_path / "x.tflite", quant_type="per-block")


def test_stripping_in_place_reports_the_converted_size(converted, tmp_path):
    """The stage strips its file in place: the size before is the converted file's, not the stripped one's."""
    from pipeline.export.tflite_size import strip_tflite

    info, _, calib = converted
    path = tmp_path / "model.tflite"
    shutil.copy(info["path"], path)
    converted_size = path.stat().st_size
    result = strip_tflite(path, path, calib[:2])
    assert result["size_before"] == converted_size > result["size_after"] == path.stat().st_size


def test_a_strip_that_changes_outputs_is_refused_and_writes_nothing(converted, tmp_path, monkeypatch):
    import pipeline.export.tflite_size as tflite_size

    info, _, calib = converted
    real = tflite_size.strip_model

    def damaging(model):
        removed = real(model)
        for t in model.subgraphs[0].tensors:
            if t.quantization is not None and t.quantization.scale is not None and len(t.quantization.scale) == 1:
                t.quantization.scale = [t.quantization.scale[0] * 2]  # a wrong activation scale
        return removed

    monkeypatch.setattr(tflite_size, "strip_model", damaging)
    out = tmp_path / "damaged.tflite"
    with pytest.raises(ExportError, match="stripping changed LiteRT's outputs"):
        tflite_size.strip_tflite(info["path"], out, calib[:4])
    assert not out.exists() and not Path(f"{out}.check.tflite").exists()


def test_the_conversion_leaves_the_recursion_limit_as_it_found_it(tmp_path):
    """onnx2tf sets Python's recursion limit to 2**31 - 1 when imported; left so, a later parse of a deeply nested
    params.yaml in the same process recursed 100,000 levels (minutes) before its clear error."""
    import sys

    from pipeline.export.tflite_export import _run_onnx2tf

    for name in [m for m in sys.modules if m == "onnx2tf" or m.startswith("onnx2tf.")]:
        del sys.modules[name]  # imported afresh by the call: its import-time limit applies again
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(1234)
    try:
        with pytest.raises(ExportError, match="missing.onnx"):  # every path restores the limit, failures too
            _run_onnx2tf(tmp_path / "missing.onnx", tmp_path / "missing.onnx", tmp_path, tmp_path / "c.npy", {})
        assert "onnx2tf" in sys.modules and sys.getrecursionlimit() == 1234
    finally:
        sys.setrecursionlimit(before)
