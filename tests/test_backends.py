import os
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.infer.backends import OnnxBackend, TFLiteBackend, TorchBackend, arrange_outputs, open_model

S, NC = 32, 3  # N = 16 + 4 + 1 = 21 anchors


class TinyDetector(nn.Module):
    """Follows CONTRACTS.md: [B,3,S,S] -> boxes [B,N,4] (ltrb >= 0, pixels), scores [B,N,nc] (sigmoid)."""

    def __init__(self, swap: bool = False) -> None:
        super().__init__()
        self.swap = swap
        self.p3 = nn.Conv2d(3, 8, 8, stride=8)
        self.p4 = nn.Conv2d(8, 8, 2, stride=2)
        self.p5 = nn.Conv2d(8, 8, 2, stride=2)
        self.box = nn.Conv2d(8, 4, 1)
        self.cls = nn.Conv2d(8, NC, 1)

    def forward(self, x):
        f3 = torch.relu(self.p3(x))
        f4 = torch.relu(self.p4(f3))
        f5 = torch.relu(self.p5(f4))
        feats = [f3, f4, f5]
        boxes = torch.cat([torch.relu(self.box(f)).flatten(2) for f in feats], 2).transpose(1, 2) * 8
        scores = torch.cat([torch.sigmoid(self.cls(f)).flatten(2) for f in feats], 2).transpose(1, 2)
        return (scores, boxes) if self.swap else (boxes, scores)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return TinyDetector().eval()


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(0).random((2, 3, S, S), dtype=np.float32)


def _export(module, path, out_names=("boxes", "scores"), dynamic=True, dtype=torch.float32):
    x = torch.rand(1, 3, S, S, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # legacy (TorchScript) exporter, on purpose
        torch.onnx.export(module, (x,), str(path), opset_version=13, input_names=["images"],
                          output_names=list(out_names), dynamo=False,
                          dynamic_axes={"images": {0: "batch"}} if dynamic else None)
    return path


def test_torch_backend_shapes(model, batch):
    b = TorchBackend(model.train(), imgsz=S)
    boxes, scores = b(batch)
    assert model.training  # mode restored after the call
    model.eval()
    assert boxes.shape == (2, 21, 4) and scores.shape == (2, 21, NC)
    assert boxes.dtype == np.float32 and (boxes >= 0).all() and ((scores >= 0) & (scores <= 1)).all()
    with pytest.raises(ValueError, match="NCHW"):
        b(batch[0])


def test_onnx_matches_torch(model, batch, tmp_path):
    ref = TorchBackend(model)(batch)
    ob = open_model(_export(model, tmp_path / "m.onnx"))
    assert isinstance(ob, OnnxBackend) and ob.imgsz == S
    for got, want in zip(ob(batch), ref):
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_onnx_unnamed_swapped_and_fixed_batch(model, batch, tmp_path):
    """Outputs named out0/out1 in (scores, boxes) order, fixed batch 1: matched by shape, looped."""
    swapped = TinyDetector(swap=True)
    swapped.load_state_dict(model.state_dict())
    path = _export(swapped.eval(), tmp_path / "s.onnx", out_names=("out0", "out1"), dynamic=False)
    ob = OnnxBackend(path)
    assert ob.fixed_batch == 1
    ref = TorchBackend(model)(batch)
    for got, want in zip(ob(batch), ref):
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_onnx_fp16_and_int8_qdq(model, batch, tmp_path):
    import copy

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    ref_boxes, ref_scores = TorchBackend(model)(batch)
    half = _export(copy.deepcopy(model).half(), tmp_path / "h.onnx", dtype=torch.float16)
    hb = OnnxBackend(half)
    assert hb.input_dtype == np.float16
    boxes, scores = hb(batch)
    assert boxes.dtype == np.float32 and scores.dtype == np.float32
    np.testing.assert_allclose(boxes, ref_boxes, atol=0.05)
    np.testing.assert_allclose(scores, ref_scores, atol=5e-3)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"images": batch[i:i + 1]} for i in range(2)])

        def get_next(self):
            return next(self.it, None)

    fp32 = _export(model, tmp_path / "f.onnx")
    q = tmp_path / "q.onnx"
    quantize_static(str(fp32), str(q), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    boxes, scores = OnnxBackend(q)(batch)
    assert boxes.shape == (2, 21, 4) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, ref_scores, atol=0.05)
    np.testing.assert_allclose(boxes, ref_boxes, atol=0.05 * ref_boxes.max())


def test_arrange_outputs_rules():
    rng = np.random.default_rng(1)
    boxes = rng.random((1, 6, 4), dtype=np.float32) * 50
    scores = rng.random((1, 6, 4), dtype=np.float32)  # nc == 4: only the value range tells them apart
    b, s = arrange_outputs([scores.transpose(0, 2, 1), boxes], ["Identity", "Identity_1"], n_hint=6)
    np.testing.assert_array_equal(b, boxes)
    np.testing.assert_array_equal(s, scores)
    b, s = arrange_outputs([scores, boxes], ["model/scores", "model/boxes"])
    np.testing.assert_array_equal(b, boxes)
    with pytest.raises(ValueError, match="expected 2 model outputs"):
        arrange_outputs([boxes], ["boxes"])
    with pytest.raises(ValueError, match=r"\(1, 6, 4\) and \(1, 5, 3\)"):
        arrange_outputs([boxes, scores[:, :5, :3]], ["a", "b"])
    with pytest.raises(ValueError, match="last dim 4"):
        arrange_outputs([scores[..., :3], scores[..., :2]], ["a", "b"])


def test_missing_files_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        open_model(tmp_path / "nope.onnx")
    with pytest.raises(FileNotFoundError, match="nope.tflite"):
        TFLiteBackend(tmp_path / "nope.tflite")
    (tmp_path / "m.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match="unsupported model format"):
        open_model(tmp_path / "m.bin")


def _keras_model(tf, as_dict: bool):
    """16x16 NHWC, N = 4 (stride 8) + 1 (stride 16) = 5; outputs scores [1,5,3], boxes [1,5,4]."""
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((16, 16, 3), batch_size=1)
    f1 = tf.keras.layers.Conv2D(8, 8, strides=8, activation="relu")(inp)
    f2 = tf.keras.layers.Conv2D(8, 2, strides=2, activation="relu")(f1)
    bl, sl = tf.keras.layers.Conv2D(4, 1, activation="relu"), tf.keras.layers.Conv2D(NC, 1, activation="sigmoid")
    boxes = tf.keras.layers.Concatenate(axis=1)([tf.keras.layers.Reshape((4, 4))(bl(f1)),
                                                 tf.keras.layers.Reshape((1, 4))(bl(f2))])
    # named layers: legacy Keras (which onnx2tf switches the process to) takes signature keys from layer names
    boxes = tf.keras.layers.Rescaling(16.0, name="boxes" if as_dict else None)(boxes)
    scores = tf.keras.layers.Concatenate(axis=1, name="scores" if as_dict else None)([tf.keras.layers.Reshape((4, NC))(sl(f1)),
                                                  tf.keras.layers.Reshape((1, NC))(sl(f2))])
    return tf.keras.Model(inp, {"boxes": boxes, "scores": scores} if as_dict else [scores, boxes])


def _convert(tf, model, int8: bool, rng) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        calib = [rng.random((1, 16, 16, 3), dtype=np.float32) for _ in range(16)]
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([c] for c in calib)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def test_tflite_float_and_int8(tmp_path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    rng = np.random.default_rng(0)
    model = _keras_model(tf, as_dict=False)  # unnamed outputs, scores first: matched by shape
    x = rng.random((2, 3, 16, 16), dtype=np.float32)
    ref_scores, ref_boxes = (np.concatenate([np.asarray(o) for o in outs]) for outs in
                             zip(*[model(x[i:i + 1].transpose(0, 2, 3, 1)) for i in range(2)]))
    assert ref_boxes.max() > 1.0  # boxes really are in pixels, scores in [0, 1]

    (tmp_path / "f.tflite").write_bytes(_convert(tf, model, False, rng))
    (tmp_path / "q.tflite").write_bytes(_convert(tf, model, True, rng))
    fb = open_model(tmp_path / "f.tflite")
    assert isinstance(fb, TFLiteBackend) and fb.imgsz == 16
    boxes, scores = fb(x)  # fixed batch 1 in the model: looped over the batch of 2
    assert boxes.shape == (2, 5, 4) and scores.shape == (2, 5, NC)
    np.testing.assert_allclose(boxes, ref_boxes, atol=1e-4)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)

    qb = TFLiteBackend(tmp_path / "q.tflite")
    assert qb.input["dtype"] == np.int8
    boxes, scores = qb(x)
    assert boxes.dtype == np.float32 and boxes.shape == (2, 5, 4) and scores.shape == (2, 5, NC)
    # INT8 tolerance: a few quantisation steps of each output's own scale (scores 1/256, boxes range/256)
    np.testing.assert_allclose(scores, ref_scores, atol=0.03)
    np.testing.assert_allclose(boxes, ref_boxes, atol=0.05 * ref_boxes.max())


def test_tflite_signature_names(tmp_path):
    import tensorflow as tf
    model = _keras_model(tf, as_dict=True)
    (tmp_path / "d.tflite").write_bytes(_convert(tf, model, False, np.random.default_rng(0)))
    b = TFLiteBackend(tmp_path / "d.tflite")
    assert sorted(b.output_names.values()) == ["boxes", "scores"]  # tensor names are StatefulPartitionedCall*
    x = np.random.default_rng(2).random((1, 3, 16, 16), dtype=np.float32)
    out = model(x.transpose(0, 2, 3, 1))
    boxes, scores = b(x)
    np.testing.assert_allclose(boxes, np.asarray(out["boxes"]), atol=1e-4)
    np.testing.assert_allclose(scores, np.asarray(out["scores"]), atol=1e-5)


def test_open_model_refuses_a_malicious_checkpoint_and_runs_nothing(tmp_path):
    import os

    from leafyolo import LEAFYOLO
    from pipeline.io.checkpoint import UnsafeCheckpointError

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    torch.save({"model": Payload(), "variant": "leafyolo_u"}, evil)
    with pytest.raises(UnsafeCheckpointError, match="evil.pt holds objects other than tensors"):
        open_model(evil)
    with pytest.raises(UnsafeCheckpointError, match="refused without running it"):
        LEAFYOLO(evil)
    assert not marker.exists()


def test_open_model_loads_a_checkpoint_with_its_image_size(tmp_path):
    from pipeline.io.checkpoint import save_checkpoint
    from pipeline.model.leafyolo import LeafYOLO

    model = LeafYOLO("leafyolo_u", nc=3)
    save_checkpoint(tmp_path / "m.pt", model, ["a", "b", "c"], 96)
    backend = open_model(tmp_path / "m.pt")
    assert isinstance(backend, TorchBackend) and backend.imgsz == 96
    assert backend.params == sum(p.numel() for p in model.parameters())
