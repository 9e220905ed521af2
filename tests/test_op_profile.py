"""bench.op_profile (issue 26 item 1): each prefix file computes exactly the tensor the whole file computes at that
operator, the per-operator times add up to the profile total, and the tables group every operator once. Timings
are never asserted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.op_profile import converted, operators, prefixes, stride_of
from pipeline.export.tflite_size import op_counts
from tests.test_bench import _run_bench

pytestmark = pytest.mark.bench


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder holding the 64 px deployable file, converted once for both tests (the bench reuses it)."""
    from bench.deploy_compare import calibration_images

    folder = tmp_path_factory.mktemp("op_profile")
    converted("leafyolo_u-p30", 64, calibration_images(64, 32, folder), folder)
    return folder


def test_prefixes_compute_the_whole_files_intermediate_tensors(work):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    path = work / "leafyolo_u-p30-64" / "int8.tflite"
    ops, cut = operators(path), prefixes(path)
    assert len(ops) == len(cut) == sum(op_counts(path).values())
    whole = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                        experimental_op_resolver_type=OpResolverType.BUILTIN_REF)  # intermediates kept
    whole.allocate_tensors()
    x = np.random.default_rng(0).integers(-128, 128, whole.get_input_details()[0]["shape"], dtype=np.int8)
    whole.set_tensor(whole.get_input_details()[0]["index"], x)
    whole.invoke()
    graph = {op["index"]: op for op in whole._get_ops_details()}
    for k in (1, len(cut) // 3, len(cut) // 2, len(cut)):
        it = Interpreter(model_content=cut[k - 1], experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        got = it.get_tensor(it.get_output_details()[0]["index"])
        assert list(got.shape) == ops[k - 1]["shape"]
        np.testing.assert_array_equal(got, whole.get_tensor(graph[k - 1]["outputs"][0]))


def test_the_report_adds_up(work, tmp_path):
    out = tmp_path / "op.md"
    _run_bench(["bench.op_profile", "--sizes", "64", "--models", "leafyolo_u-p30", "--passes", "1", "--runs", "2",
                "--work", str(work), "--out", str(out)], timeout=600)
    p = json.loads(out.with_suffix(".json").read_text())["leafyolo_u-p30"]["64"]
    assert abs(sum(op["ms"] for op in p["ops"]) - p["total_ms"]) < 1e-6 and p["whole_ms"] > 0 and p["xnnpack_ms"] > 0
    text = out.read_text()
    for op_type, n in op_counts(work / "leafyolo_u-p30-64" / "int8.tflite").items():
        assert f"| {op_type} | " in text and f"), {n} |" in text
    assert stride_of([1, 8, 8, 16], 64) == "/8" and stride_of([1, 66, 66, 3], 64) == "/1"
    assert stride_of([1, 1, 1, 96], 320) == "global" and stride_of([1, 84, 2100], 320) == "flat"
