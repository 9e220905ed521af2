"""The microcontroller target: the exported INT8 TFLite runs under TensorFlow Lite Micro (PyPI `tflite-micro`)
bit-exact with LiteRT's reference kernels, in a measured minimal arena, and compiles into firmware as a C array.
Uses the session's real conversion (`converted` in conftest.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pipeline.export.c_array import resolver_method, write_c_array
from pipeline.export.graph_prep import prepare_for_onnx2tf
from pipeline.export.onnx_export import run_onnx
from pipeline.export.tflite_size import op_types
from pipeline.infer.backends import TFLiteBackend
from pipeline.infer.tflm import ARENA_STEP, TFLMBackend, _runs_in, compare_with_litert_reference, min_arena_bytes


def test_exported_file_has_no_op_without_a_tflm_kernel(converted):
    info, d, _ = converted
    assert "HardSigmoid" in {n.op_type for n in onnx.load(str(d / "model.onnx")).graph.node}  # the model has gates
    ops = op_types(info["path"])
    assert "RELU_0_TO_1" not in ops and {"CONV_2D", "DEPTHWISE_CONV_2D", "MUL"} <= ops


def test_tflm_is_bit_exact_with_litert_reference_kernels(converted):
    info, _, calib = converted
    report = compare_with_litert_reference(info["path"], calib)
    assert report == {"images": len(calib), "max_abs_diff": 0, "identical": True}


def test_tflm_backend_gives_boxes_and_scores_like_litert(converted):
    """Same (de)quantisation and output matching as LiteRT's backend; XNNPACK rounds some requantisations
    differently from the reference kernels, so the mean difference is bounded by one output step."""
    info, _, calib = converted
    micro, lite = TFLMBackend(info["path"]), TFLiteBackend(info["path"])
    (mb, ms), (lb, ls) = micro(calib[:4]), lite(calib[:4])
    assert mb.shape == lb.shape and ms.shape == ls.shape and mb.shape[-1] == 4
    for name, a, b in (("boxes", mb, lb), ("scores", ms, ls)):
        step = info["outputs"][name]["scale"]
        assert np.abs(a - b).mean() <= step, name


def test_min_arena_is_the_smallest_that_runs(converted):
    info, _, _ = converted
    arena = min_arena_bytes(info["path"])
    model = Path(info["path"]).read_bytes()
    shape = (1, *TFLMBackend(info["path"], arena_size=arena).input["shape"][1:])
    assert 10_000 < arena < 1_000_000
    assert _runs_in(model, arena, shape, np.int8) and not _runs_in(model, arena - ARENA_STEP, shape, np.int8)


def test_an_op_without_a_tflm_kernel_is_named(tmp_path):
    """onnx2tf turns HardSigmoid into RELU_0_TO_1 when the graph is not lowered: TFLM refuses it by name."""
    tf = pytest.importorskip("tensorflow")

    class Gate(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
        def __call__(self, x):
            return tf.maximum(0.0, tf.minimum(1.0, x * 0.5 - 0.25))

    gate = Gate()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([gate.__call__.get_concrete_function()], gate)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([np.random.default_rng(i).random((1, 8, 8, 3), np.float32) * 4 - 2]
                                           for i in range(8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    path = tmp_path / "gate.tflite"
    path.write_bytes(conv.convert())
    assert "RELU_0_TO_1" in op_types(path)
    with pytest.raises(RuntimeError, match=r"gate\.tflite.*RELU_0_TO_1"):
        TFLMBackend(path)


def _gates_model() -> onnx.ModelProto:
    """Conv -> HardSigmoid (folded into the conv) and Relu -> HardSigmoid (lowered with Mul/Add), other alpha/beta."""
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])
    y1 = helper.make_tensor_value_info("y1", TensorProto.FLOAT, [1, 4, 5, 5])
    y2 = helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, 4, 5, 5])
    w = numpy_helper.from_array(rng.normal(size=(4, 4, 1, 1)).astype(np.float32) * 3, "w")
    b = numpy_helper.from_array(rng.normal(size=4).astype(np.float32), "b")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"]),
             helper.make_node("HardSigmoid", ["c"], ["y1"], alpha=1 / 6, beta=0.5),
             helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("HardSigmoid", ["r"], ["y2"], alpha=0.2, beta=0.1)]
    graph = helper.make_graph(nodes, "gates", [x], [y1, y2], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def test_hard_sigmoid_lowering_is_exact():
    model = _gates_model()
    lowered = prepare_for_onnx2tf(model)
    onnx.checker.check_model(lowered, full_check=True)
    ops = [n.op_type for n in lowered.graph.node]
    assert "HardSigmoid" not in ops and ops.count("Clip") == 2
    clips = [n for n in lowered.graph.node if n.op_type == "Clip"]
    inits = {i.name: numpy_helper.to_array(i) for i in lowered.graph.initializer}
    assert all(float(inits[c.input[1]]) == 0.0 and float(inits[c.input[2]]) == 6.0 for c in clips)  # -> RELU6
    x = np.random.default_rng(1).normal(size=(1, 4, 5, 5)).astype(np.float32) * 4
    a, b = run_onnx(model, x), run_onnx(lowered, x)
    assert (a["y1"] == 0).any() and (a["y1"] == 1).any() and (a["y2"] == 1).any()  # the clamps are exercised
    for name in ("y1", "y2"):
        np.testing.assert_allclose(b[name], a[name], atol=1e-6)


def test_c_array_holds_the_exact_bytes_and_compiles(converted, tmp_path):
    info, _, _ = converted
    header, source = tmp_path / "model_data.h", tmp_path / "model_data.cc"
    written = write_c_array(info["path"], header, source, 123456, info, names=["red cell", 'say "hi"', "platélet"])
    assert written["ops"] == sorted(op_types(info["path"]))
    model = Path(info["path"]).read_bytes()
    body = source.read_text().split("{", 1)[1].split("}", 1)[0]
    assert bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body)) == model
    text = header.read_text()
    assert "leafyolo_model_arena_bytes = 123456;" in text
    assert f"leafyolo_model_boxes_index = {info['outputs']['boxes']['position']};" in text
    assert "leafyolo_model_nc = 3;" in text
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler on this machine: the compile half of the test needs g++")
    methods = " ".join(f"void {resolver_method(op)}() {{ ++n; }}" for op in op_types(info["path"]))
    (tmp_path / "main.cc").write_text(
        '#include <cstdio>\n#include "model_data.h"\n'
        f"struct Resolver {{ int n = 0; {methods} }};  // stands in for tflite::MicroMutableOpResolver\n"
        "int main() {\n  Resolver r;\n  MODEL_DATA_ADD_OPS(r);\n"
        '  if (r.n != leafyolo_model_op_count) return 3;\n  unsigned long s = 0;\n'
        "  for (unsigned int i = 0; i < leafyolo_model_len; ++i) s = (s * 31 + leafyolo_model[i]) % 1000000007UL;\n"
        '  std::printf("%u %lu %u %d %d %s|%s\\n", leafyolo_model_len, s, leafyolo_model_arena_bytes,\n'
        "              leafyolo_model_input_zero_point, leafyolo_model_scores_channels, leafyolo_model_names[1],\n"
        "              leafyolo_model_names[2]);\n}\n")
    subprocess.run([cxx, "-std=c++17", "main.cc", "model_data.cc", "-o", "main"], cwd=tmp_path, check=True)
    out = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, check=True).stdout.split(" ")
    checksum = 0
    for byte in model:
        checksum = (checksum * 31 + byte) % 1000000007
    nc = info["outputs"]["scores"]["shape"][2]
    assert out == [str(len(model)), str(checksum), "123456", str(info["input"]["zero_point"]), str(nc), "say",
                   '"hi"|platélet\n']
