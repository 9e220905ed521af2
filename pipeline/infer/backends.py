"""The one runtime layer: `open_model` opens a .pt / .onnx / .tflite (or wraps a module) for inference, one
onnxruntime session setup (`ort_session`), one TFLite (de)quantisation (`quantize_input` / `dequantize_output`),
one output-matching rule (`arrange_outputs`). The evaluator, the exporters' checks, predict and the API all run
models through it. Each backend runs ONLY the graph; pre/post-processing is shared (pipeline/evaluate/evaluator.py,
pipeline/infer/predict.py).

Protocol: ``backend(batch float32 NCHW in [0, 1]) -> (boxes [B, N, 4] float32, scores [B, N, nc] float32)``,
with attributes ``imgsz`` (int or None when unknown), ``name`` and ``params`` (None unless the file says); file
backends also have ``metadata`` (what the file carries: class names, image size, ...; pipeline/io/file_metadata.py)
and ``names`` (its class names, [] when it carries none).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from pipeline.infer.postprocess import make_anchors, to_numpy
from pipeline.io.file_metadata import decode_value, read_tflite_metadata
from pipeline.io.tflite_file import read_bytes
from pipeline.model.modes import eval_mode

Outputs = tuple[np.ndarray, np.ndarray]


class Backend(Protocol):
    name: str
    imgsz: int | None
    params: int | None

    def __call__(self, batch: np.ndarray) -> Outputs: ...


def _expected_n(imgsz: int | None) -> int | None:
    return None if not imgsz else int(make_anchors(imgsz)[0].shape[0])


def _find_layout(a: np.ndarray, b: np.ndarray, n_hint: int | None) -> tuple[bool, bool]:
    """Return (a_is_BCN, b_is_BCN): the prediction axis N is the one both outputs share (n_hint preferred)."""
    pairs = [(1, 1), (2, 2), (1, 2), (2, 1)]  # axis holding N in (a, b); [B, N, C] first
    common = [(i, j) for i, j in pairs if a.shape[i] == b.shape[j]]
    if n_hint is not None:
        common = [p for p in common if a.shape[p[0]] == n_hint] or common
    if not common:
        raise ValueError(f"model outputs {a.shape} and {b.shape} share no prediction axis N "
                         f"(expected [B, N, 4] and [B, N, nc])")
    i, j = common[0]
    return i == 2, j == 2


def arrange_outputs(outputs: Sequence[np.ndarray], names: Sequence[str], n_hint: int | None = None) -> Outputs:
    """(boxes, scores) among two raw outputs, both as [B, N, C] float32 (see `match_outputs`)."""
    (boxes, scores), _ = match_outputs(outputs, names, n_hint)
    return boxes, scores


def match_outputs(outputs: Sequence[np.ndarray], names: Sequence[str],
                  n_hint: int | None = None) -> tuple[Outputs, tuple[int, int]]:
    """The one output-matching rule: identify (boxes, scores) among two raw outputs, bring both to [B, N, C]
    float32, and say which positions they came from (boxes position, scores position).

    Matching: by name when one name contains "box" and another "score"; otherwise by shape (the output
    with 4 channels is boxes); if both have 4 channels (nc == 4) the one whose values all lie in [0, 1]
    is scores (sigmoid) and, if both do, the first output is taken as boxes. Layout [B, C, N] is
    transposed by locating the N axis shared by both outputs (``n_hint`` = expected N breaks ties).
    """
    if len(outputs) != 2:
        raise ValueError(f"expected 2 model outputs (boxes, scores), got {len(outputs)} with shapes "
                         f"{[tuple(o.shape) for o in outputs]}")
    a, b = (np.asarray(o, dtype=np.float32) for o in outputs)
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ValueError(f"expected 3-D outputs [B, N, C], got {a.shape} and {b.shape}")
    a_t, b_t = _find_layout(a, b, n_hint)
    a = a.transpose(0, 2, 1) if a_t else a
    b = b.transpose(0, 2, 1) if b_t else b
    swapped = _boxes_second(a, b, [n.lower() for n in names])
    boxes, scores = (b, a) if swapped else (a, b)
    if boxes.shape[2] != 4:
        raise ValueError(f"no boxes output with last dim 4: got {a.shape} and {b.shape} (names {list(names)})")
    return (boxes, scores), ((1, 0) if swapped else (0, 1))


def _boxes_second(a: np.ndarray, b: np.ndarray, low: list[str]) -> bool:
    if "box" in low[1] and "score" in low[0]:
        return True
    if "box" in low[0] and "score" in low[1]:
        return False
    if b.shape[2] == 4 and a.shape[2] != 4:
        return True
    if a.shape[2] == 4 and b.shape[2] == 4:  # nc == 4: sigmoid scores lie in [0, 1]
        a_prob = bool(a.min() >= 0 and a.max() <= 1)
        b_prob = bool(b.min() >= 0 and b.max() <= 1)
        return a_prob and not b_prob
    return False


def _check_batch(batch: Any) -> np.ndarray:
    x = to_numpy(batch).astype(np.float32, copy=False)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a float32 NCHW batch [B, 3, S, S], got shape {x.shape}")
    return x


def _refused(path: Path, what: str, exc: BaseException) -> ValueError:
    """The ValueError for a model file a runtime refused: names the file, quotes the runtime's first line."""
    said = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return ValueError(f"{path}: {what} ({said[:300]})")


def _run_fixed_batch(fn: Callable[[np.ndarray], Outputs], x: np.ndarray, fixed: int | None) -> Outputs:
    """Run ``fn`` in chunks of ``fixed`` images when the graph has a fixed batch size."""
    if not fixed or fixed == x.shape[0]:
        return fn(x)
    if fixed != 1:
        raise ValueError(f"model has fixed batch {fixed} but got a batch of {x.shape[0]}; use batch {fixed} or 1")
    outs = [fn(x[i:i + 1]) for i in range(x.shape[0])]
    return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])


class TorchBackend:
    """Runs an ``nn.Module`` that returns ``(boxes, scores)`` in eval mode under no_grad. The module's
    train/eval mode is restored after each call (the trainer validates its live model with this)."""

    def __init__(self, model: torch.nn.Module, device: str = "cpu", imgsz: int | None = None,
                 name: str = "torch") -> None:
        self.model = model.to(device)
        self.device = torch.device(device)
        self.imgsz = imgsz
        self.name = name
        self.params = sum(p.numel() for p in model.parameters())

    def __call__(self, batch: np.ndarray) -> Outputs:
        x = torch.from_numpy(np.ascontiguousarray(_check_batch(batch))).to(self.device)
        with eval_mode(self.model), torch.no_grad():
            out = self.model(x)
        if not isinstance(out, (tuple, list)) or len(out) < 2:
            raise ValueError(f"{self.name}: model must return (boxes, scores), got {type(out).__name__}")
        boxes, scores = (to_numpy(o).astype(np.float32) for o in out[:2])
        return arrange_outputs([boxes, scores], ["boxes", "scores"], _expected_n(self.imgsz or x.shape[-1]))


def ort_session(model: Any, threads: int = 1, exact: bool = False):
    """The onnxruntime CPU session every ONNX run uses (a path or an in-memory ModelProto). `exact`: basic graph
    optimisations only (see OnnxBackend)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if exact:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    src = model.SerializeToString() if hasattr(model, "SerializeToString") else str(model)
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float input -> the tensor's dtype: int8/uint8 with its (scale, zero point), else a plain cast."""
    dtype = detail["dtype"]
    if dtype in (np.int8, np.uint8):
        scale, zp = detail["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zp), info.min, info.max).astype(dtype)
    return x.astype(dtype)


def dequantize_output(y: np.ndarray, detail: dict) -> np.ndarray:
    """An output tensor as float32: integer outputs de-quantised with their (scale, zero point)."""
    if detail["dtype"] in (np.int8, np.uint8, np.int16):
        scale, zp = detail["quantization"]
        return (y.astype(np.float32) - zp) * scale
    return y.astype(np.float32)


class OnnxBackend:
    """onnxruntime CPU session. FP32, FP16 (input cast to the model type) and INT8 QDQ (float I/O) models.

    `exact=True` runs the graph with onnxruntime's basic optimisations only: QDQ pairs are executed as written
    (quantise, dequantise, float op) instead of fused into integer kernels. The fused INT8 kernels are not
    run-to-run deterministic (measured here: the same input through the same session differed by up to 0.005 in
    the outputs from call to call, and onnxruntime makes no such promise), so the evaluator scores QDQ models
    exactly and times them with the default (fused) session users deploy.
    """

    def __init__(self, path: str | Path, num_threads: int = 1, imgsz: int | None = None,
                 exact: bool = False) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        self.path = path
        try:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...) for a malformed file
            self.session = ort_session(path, num_threads, exact)
        except Exception as exc:
            raise _refused(path, "not a valid ONNX model", exc) from None
        self.params = None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ValueError(f"{path}: expected one image input [B, 3, S, S], got {[i.shape for i in inputs]}")
        inp = inputs[0]
        self.input_name = inp.name
        self.input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        self.output_names = [o.name for o in self.session.get_outputs()]
        shape = inp.shape
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        self.imgsz = imgsz or (shape[-1] if isinstance(shape[-1], int) else None)
        self.name = f"onnx:{path.name}"
        self.metadata = {k: decode_value(v) for k, v in self.session.get_modelmeta().custom_metadata_map.items()}
        self.names = [str(n) for n in self.metadata.get("names") or []]

    def _run(self, x: np.ndarray) -> Outputs:
        try:
            outs = self.session.run(self.output_names, {self.input_name: x.astype(self.input_dtype)})
            return arrange_outputs([np.asarray(o) for o in outs], self.output_names, _expected_n(x.shape[-1]))
        except Exception as exc:  # onnxruntime's own types, or outputs that are not (boxes, scores)
            raise _refused(self.path, "cannot run the model", exc) from None

    def __call__(self, batch: np.ndarray) -> Outputs:
        return _run_fixed_batch(self._run, _check_batch(batch), self.fixed_batch)


class TFLiteBackend:
    """LiteRT interpreter (``ai_edge_litert``). NHWC input; int8/uint8 input is quantised and int8/uint8
    outputs de-quantised with each tensor's (scale, zero_point). Fixed batch is run image by image."""

    def __init__(self, path: str | Path, num_threads: int = 1, imgsz: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"TFLite model not found: {path}")
        self.path = path
        # From memory, not model_path: LiteRT verifies a flatbuffer handed over as bytes (its file loader does not, and
        # a file whose offsets point outside it crashes the process); LiteRT raises ValueError or RuntimeError.
        self._model = read_bytes(path)  # names the file when it is not a TFLite flatbuffer at all
        try:  # UnicodeDecodeError (a ValueError) too: tensor names that are not UTF-8
            self.interpreter = Interpreter(model_content=self._model, num_threads=num_threads)
            self.interpreter.allocate_tensors()
            inputs = self.interpreter.get_input_details()
            self.output_names = self._output_names()
        except (ValueError, RuntimeError) as exc:
            raise _refused(path, "not a valid TFLite model", exc) from None
        if len(inputs) != 1 or len(inputs[0]["shape"]) != 4 or inputs[0]["shape"][3] != 3:
            raise ValueError(f"{path}: expected one image input [1, S, S, 3] (NHWC), got "
                             f"{[d['shape'].tolist() for d in inputs]}")
        self.input = inputs[0]
        sig = self.input.get("shape_signature", self.input["shape"])
        self.dynamic_batch = int(sig[0]) == -1
        self._batch = int(self.input["shape"][0])
        self.imgsz = imgsz or int(self.input["shape"][1])
        self.name = f"tflite:{path.name}"
        self.params = None
        self.metadata = read_tflite_metadata(path)
        self.names = [str(n) for n in self.metadata.get("names") or []]
        self.order: tuple[int, int] | None = None  # positions of (boxes, scores) in get_output_details()

    def _output_names(self) -> dict[int, str]:
        """Tensor index -> name, preferring the signature's output keys (e.g. "boxes") over tensor names
        such as "StatefulPartitionedCall_1:0" that the converter gives."""
        names = {d["index"]: d["name"] for d in self.interpreter.get_output_details()}
        try:
            runner = self.interpreter.get_signature_runner()
            names.update({d["index"]: key for key, d in runner.get_output_details().items()})
        except (ValueError, KeyError, AttributeError):
            pass  # no signature in the model: keep tensor names
        return names

    def _run(self, x: np.ndarray) -> Outputs:
        nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        if self.dynamic_batch and nhwc.shape[0] != self._batch:
            self.interpreter.resize_tensor_input(self.input["index"], list(nhwc.shape))
            self.interpreter.allocate_tensors()
            self._batch = nhwc.shape[0]
        try:
            self.interpreter.set_tensor(self.input["index"], quantize_input(nhwc, self.input))
            self.interpreter.invoke()
            details = self.interpreter.get_output_details()
            outs = [dequantize_output(self.interpreter.get_tensor(d["index"]), d) for d in details]
            names = [self.output_names.get(d["index"], d["name"]) for d in details]
            (boxes, scores), self.order = match_outputs(outs, names, _expected_n(x.shape[-1]))
        except (ValueError, RuntimeError) as exc:  # LiteRT's, or outputs that are not (boxes, scores)
            raise _refused(self.path, "cannot run the model", exc) from None
        return boxes, scores

    def __call__(self, batch: np.ndarray) -> Outputs:
        x = _check_batch(batch)
        return _run_fixed_batch(self._run, x, None if self.dynamic_batch else int(self.input["shape"][0]))


def open_model(source: str | Path | torch.nn.Module, imgsz: int | None = None, num_threads: int = 1,
               exact: bool = False) -> Backend:
    """The one factory: an ``nn.Module`` -> TorchBackend; a ``.pt``/``.pth`` checkpoint (loaded safely and rebuilt,
    pruned ones included) -> TorchBackend with the checkpoint's image size; ``.onnx`` -> OnnxBackend (``exact``:
    QDQ executed as written); ``.tflite`` -> TFLiteBackend (LiteRT). Errors name the file."""
    if isinstance(source, torch.nn.Module):
        return TorchBackend(source, imgsz=imgsz)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"model not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        from pipeline.io.model_loader import load_model

        model, ckpt = load_model(path)
        return TorchBackend(model, imgsz=imgsz or int(ckpt["imgsz"]), name=f"torch:{path.name}")
    if suffix == ".onnx":
        return OnnxBackend(path, num_threads=num_threads, imgsz=imgsz, exact=exact)
    if suffix == ".tflite":
        return TFLiteBackend(path, num_threads=num_threads, imgsz=imgsz)
    raise ValueError(f"{path}: unsupported model format {suffix!r} (expected .pt, .pth, .onnx or .tflite)")
