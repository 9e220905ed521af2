"""Class names travel with every file: ONNX metadata_props and a `leafyolo` TFLite metadata entry, written and read
back, outputs unchanged, and the runtime layer and the API reading them (uses the session's real conversion)."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest

from pipeline.export.tflite_size import size_breakdown
from pipeline.infer.backends import OnnxBackend, TFLiteBackend
from pipeline.io.file_metadata import (
    embed_tflite_metadata,
    file_metadata,
    read_onnx_metadata,
    read_tflite_metadata,
    set_onnx_metadata,
)
from pipeline.io.tflite_file import read_model, write_model

META = file_metadata("leafyolo_u", 3, ["red cell", "white cell", "platélet"], 64, "data.yaml")


def test_file_metadata_refuses_names_that_do_not_match_the_classes():
    with pytest.raises(ValueError, match="2 class names for a model that predicts 3 classes"):
        file_metadata("leafyolo_u", 3, ["a", "b"], 64)


def test_onnx_metadata_round_trip_and_the_backend_reads_it(converted, tmp_path):
    _, d, calib = converted
    proto = set_onnx_metadata(onnx.load(str(d / "model.onnx")), META)
    onnx.save(proto, str(tmp_path / "named.onnx"))
    assert read_onnx_metadata(tmp_path / "named.onnx") == META
    named, plain = OnnxBackend(tmp_path / "named.onnx"), OnnxBackend(d / "model.onnx")
    assert named.names == META["names"] and named.metadata["imgsz"] == 64 and plain.names == []
    for a, b in zip(named(calib[:2]), plain(calib[:2])):
        assert np.array_equal(a, b)


def test_tflite_metadata_round_trip_keeps_outputs_bit_identical(converted, tmp_path):
    info, _, calib = converted
    out = tmp_path / "named.tflite"
    size = embed_tflite_metadata(info["path"], out, {**META, "input": info["input"]})
    assert size == out.stat().st_size and read_tflite_metadata(out)["names"] == META["names"]
    assert read_tflite_metadata(info["path"]) == {}
    assert size_breakdown(out)["parts"]["metadata"] > 0
    named, plain = TFLiteBackend(out), TFLiteBackend(info["path"])
    assert named.names == META["names"] and named.metadata["input"]["zero_point"] == info["input"]["zero_point"]
    for x in calib[:4]:
        for a, b in zip(named(x[None]), plain(x[None])):
            assert np.array_equal(a, b)
    # written again: the entry is replaced, not duplicated
    embed_tflite_metadata(out, out, {**META, "names": ["x", "y", "z"]})
    assert read_tflite_metadata(out)["names"] == ["x", "y", "z"]
    assert [m.name for m in read_model(out).metadata].count(b"leafyolo") == 1


def test_unreadable_tflite_metadata_is_an_error_naming_the_file(converted, tmp_path):
    info, _, _ = converted
    out = tmp_path / "bad.tflite"
    embed_tflite_metadata(info["path"], out, META)
    model = read_model(out)
    entry = next(m for m in model.metadata if m.name == b"leafyolo")
    model.buffers[entry.buffer].data = list(b"\xff not json")
    out.write_bytes(write_model(model))
    with pytest.raises(ValueError, match=r"bad\.tflite.*not UTF-8 JSON"):
        read_tflite_metadata(out)


def test_the_api_names_detections_from_the_file_alone(converted, tmp_path):
    """No sidecar, no data.yaml: LEAFYOLO(file).names come from inside the TFLite file."""
    from leafyolo import LEAFYOLO

    info, _, _ = converted
    alone = tmp_path / "alone" / "model_int8.tflite"
    alone.parent.mkdir()
    shutil.copy(info["path"], alone)
    embed_tflite_metadata(alone, alone, META)
    assert LEAFYOLO(str(alone)).names == META["names"]
