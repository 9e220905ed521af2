"""ONNX export (FP32 + FP16), NNCF INT8 QDQ ONNX and the calibration file. Tiny: leafyolo_u, nc=3, 64 px."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from pipeline.export.common import ExportError, load_onnx
from pipeline.export.onnx_export import export_onnx, run_onnx
from pipeline.export.quantize import (
    load_calibration_set,
    output_node_names,
    quantization_report,
    quantize_onnx_int8,
    save_calibration_set,
)
from pipeline.model.leafyolo import LeafYOLO

IMGSZ, NC = 64, 3
N_ANCHORS = sum((IMGSZ // s) ** 2 for s in (8, 16, 32))


def synthetic_images(n: int, size: int = IMGSZ, seed: int = 0) -> np.ndarray:
    """Blocky images with a few flat rectangles, quantised to k/255 like decoded 8-bit files. [n,3,S,S]."""
    rng = np.random.default_rng(seed)
    low = rng.random((n, 3, size // 8, size // 8), dtype=np.float32)
    x = np.repeat(np.repeat(low, 8, 2), 8, 3)
    for img in x:
        for _ in range(3):
            x0, y0 = rng.integers(0, size - 8, 2)
            w, h = rng.integers(6, size // 2, 2)
            img[:, y0:y0 + h, x0:x0 + w] = rng.random((3, 1, 1))
    return (np.round(x * 255) / 255).astype(np.float32)


def make_model(nc: int = NC, seed: int = 0) -> LeafYOLO:
    """Random model with non-trivial outputs: head weights widened (scores spread out), BN running stats
    from a few train-mode passes, then eval mode."""
    torch.manual_seed(seed)
    model = LeafYOLO("leafyolo_u", nc=nc)
    with torch.no_grad():
        torch.nn.init.normal_(model.head.cls_pred.weight, std=0.3)
        model.head.cls_pred.bias.fill_(-1.0)
        torch.nn.init.normal_(model.head.box_pred.weight, std=0.1)
        model.train()
        for _ in range(3):
            model.forward_train(torch.from_numpy(synthetic_images(8, seed=seed + 1)))
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx")
    model = make_model()
    info = export_onnx(model, d / "model.onnx", IMGSZ, fp16_path=d / "model_fp16.onnx")
    return model, info, d


@pytest.fixture(scope="module")
def int8(exported):
    _, info, d = exported
    calib = synthetic_images(16, seed=5)
    path = quantize_onnx_int8(info["path"], d / "model_int8.onnx", calib, preset="mixed")
    return path, calib


def test_fp32_onnx_checks_and_matches_torch(exported):
    model, info, d = exported
    proto = onnx.load(str(d / "model.onnx"))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["images"]
    assert [o.name for o in proto.graph.output] == ["boxes", "scores"]
    assert info["opset"] == 13 and proto.opset_import[0].version == 13
    assert info["size_bytes"] == (d / "model.onnx").stat().st_size
    assert info["parity"]["boxes"] < 1e-4 and info["parity"]["scores"] < 1e-4
    out = run_onnx(d / "model.onnx", synthetic_images(2, seed=3))
    assert out["boxes"].shape == (2, N_ANCHORS, 4) and out["scores"].shape == (2, N_ANCHORS, NC)
    assert out["scores"].std() > 0.01  # the test model is not degenerate


def test_fp16_onnx_runs_with_fp32_io_and_is_close(exported):
    _, info, d = exported
    proto = onnx.load(info["fp16_path"])
    assert sum(i.data_type == onnx.TensorProto.FLOAT16 for i in proto.graph.initializer) > 50
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert info["fp16_size_bytes"] < 0.6 * info["size_bytes"]
    x = synthetic_images(2, seed=4)
    ref, half = run_onnx(info["path"], x), run_onnx(info["fp16_path"], x)
    assert half["scores"].dtype == np.float32
    # tolerance: 1e-2 on probabilities, 1e-2 relative on pixel distances
    assert np.abs(half["scores"] - ref["scores"]).max() < 1e-2
    assert np.abs(half["boxes"] - ref["boxes"]).max() < 1e-2 * ref["boxes"].max()


def test_dynamic_batch_export(tmp_path):
    info = export_onnx(make_model(), tmp_path / "dyn.onnx", IMGSZ, simplify=True, dynamic_batch=True)
    assert max(info["parity"].values()) < 1e-4
    assert run_onnx(tmp_path / "dyn.onnx", synthetic_images(3))["scores"].shape == (3, N_ANCHORS, NC)


def test_broken_onnx_raises_clear_error(exported, tmp_path):
    _, info, _ = exported
    data = open(info["path"], "rb").read()
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(ExportError, match="truncated.onnx"):
        load_onnx(bad)
    with pytest.raises(ExportError, match="truncated.onnx"):
        quantize_onnx_int8(bad, tmp_path / "q.onnx", synthetic_images(2))
    assert not (tmp_path / "q.onnx").exists()
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        load_onnx(tmp_path / "missing.onnx")


def test_nncf_int8_qdq_runs_and_is_close(exported, int8):
    _, info, _ = exported
    path, calib = int8
    proto = onnx.load(str(path))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("QuantizeLinear") > 0 and ops.count("DequantizeLinear") > 0
    assert [o.name for o in proto.graph.output] == ["boxes", "scores"]
    rep = quantization_report(info["path"], path, calib)
    # tolerance on the calibration images: 0.05 on probabilities, 1 px on box distances
    assert rep["diff"]["scores"]["max_abs"] < 0.05
    assert rep["diff"]["boxes"]["max_abs"] < 1.0
    assert rep["int8_size_bytes"] < 0.6 * rep["fp32_size_bytes"]


def test_output_sigmoid_is_found_for_ignored_scope(exported):
    _, info, _ = exported
    assert output_node_names(onnx.load(info["path"]), ["scores"]) == ["/Sigmoid"]


def test_quantize_rejects_bad_preset_and_images(exported, tmp_path):
    _, info, _ = exported
    with pytest.raises(ValueError, match="preset"):
        quantize_onnx_int8(info["path"], tmp_path / "q.onnx", synthetic_images(2), preset="fast")
    with pytest.raises(ValueError, match="32px"):
        quantize_onnx_int8(info["path"], tmp_path / "q.onnx", synthetic_images(2, size=32))


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_calibration_set_roundtrip(tmp_path, dtype):
    images = synthetic_images(3, seed=7)
    path = save_calibration_set(images, tmp_path / "calib.npy", dtype=dtype)
    raw = np.load(path)
    assert raw.shape == (3, IMGSZ, IMGSZ, 3) and raw.dtype == np.dtype(dtype)  # NHWC on disk
    back = load_calibration_set(path)
    assert back.shape == images.shape and back.dtype == np.float32
    np.testing.assert_allclose(back, images, atol=1e-7)


def test_calibration_set_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"\[n, 3, S, S\]"):
        save_calibration_set(np.zeros((2, 64, 64, 3), np.float32), tmp_path / "c.npy")
    np.save(tmp_path / "bad.npy", np.zeros((2, 5), np.uint8))
    with pytest.raises(ValueError, match="bad.npy"):
        load_calibration_set(tmp_path / "bad.npy")


def test_an_export_beyond_its_parity_tolerance_fails_and_keeps_the_existing_file(tmp_path, monkeypatch):
    """The exporter enforces PARITY (not only records it): a graph whose outputs drift from torch is refused
    before it replaces the file on disk."""
    import pipeline.export.onnx_export as onnx_export

    path = tmp_path / "model.onnx"
    path.write_bytes(b"the previous export")
    real = onnx_export.run_onnx

    def drifting(model, x, exact=False):
        out = real(model, x, exact)
        return {**out, "boxes": out["boxes"] + 1.0}  # one pixel everywhere: far above the FP32 tolerance

    monkeypatch.setattr(onnx_export, "run_onnx", drifting)
    with pytest.raises(ExportError, match=r"model.onnx: onnx_fp32 output 'boxes' differs"):
        export_onnx(make_model(), path, IMGSZ)
    assert path.read_bytes() == b"the previous export"
