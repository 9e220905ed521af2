"""TensorFlow Lite Micro (PyPI `tflite-micro`, the reference interpreter of the microcontroller runtime) as a
backend of the one runtime layer, the smallest tensor arena a model runs in, and a bit-level comparison with
LiteRT's reference kernels (the kernels TFLM's are ported from).

TFLM reports no tensor names, so the outputs are named from the same file opened in LiteRT (both list the
subgraph's outputs in the same order) and matched by the one rule of `backends.match_outputs`. The arena is
measured on this (64-bit) build: pointers and persistent structs take more room than on a 32-bit MCU, so the
figure is an upper bound for ESP32 / Cortex-M targets.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from pipeline.infer.backends import (
    Outputs,
    TFLiteBackend,
    _check_batch,
    _expected_n,
    _run_fixed_batch,
    dequantize_output,
    match_outputs,
    quantize_input,
)

ARENA_STEP = 16  # TFLM aligns arena allocations to 16 bytes: the search stops at that resolution
ARENA_CEILING = 64 * 1024 * 1024


@contextlib.contextmanager
def _quiet_native_stderr(keep: list[str] | None = None):
    """TFLM prints every failed allocation on fd 2 (the arena search causes many): divert it for the block;
    with `keep`, what it printed is appended there (to quote in an error)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile("w+") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if keep is not None:
                sink.seek(0)
                keep.append(sink.read().strip())


def _detail(d: dict) -> dict:
    """TFLM's tensor details in LiteRT's shape (dtype, shape, per-tensor (scale, zero point))."""
    q = d.get("quantization_parameters") or {}
    scales, zps = list(q.get("scales", [])), list(q.get("zero_points", []))
    return {"dtype": np.dtype(d["dtype"]).type, "shape": np.asarray(d["shape"]),
            "quantization": (float(scales[0]) if scales else 0.0, int(zps[0]) if zps else 0)}


def _interpreter(model: bytes, arena_size: int):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(model, arena_size=arena_size)


def _load(model: bytes, arena_size: int, path: str | Path):
    """A TFLM interpreter for `model`, or a RuntimeError naming `path` and quoting what TFLM printed (e.g. the op it
    has no kernel for)."""
    printed: list[str] = []
    try:
        with _quiet_native_stderr(printed):
            return _interpreter(model, arena_size)
    except RuntimeError as e:
        said = " ".join(printed).replace("\n", "; ")
        raise RuntimeError(f"{path}: TFLM cannot load the model in a {arena_size:,}-byte arena ({e}); "
                           f"it said: {said}") from e


def _runs_in(model: bytes, arena_size: int, shape: tuple[int, ...], dtype) -> bool:
    """Whether TFLM loads and runs the model in `arena_size` bytes. Probed in a forked child: with some arenas that
    are too small TFLM's Python interpreter crashes the process (SIGSEGV) instead of raising; that counts as no."""
    pid = os.fork()
    if pid == 0:  # the child: report by exit status only
        code = 1
        try:
            with _quiet_native_stderr():
                interp = _interpreter(model, arena_size)
                interp.set_input(np.zeros(shape, dtype), 0)
                interp.invoke()
            code = 0
        except BaseException:  # noqa: BLE001 - anything that stops the run means "does not run in this arena"
            pass
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def min_arena_bytes(path: str | Path) -> int:
    """The smallest tensor arena (bytes, to `ARENA_STEP`) in which TFLM loads the model AND runs one inference."""
    path = Path(path)
    model = path.read_bytes()
    d = _detail(_load(model, ARENA_CEILING, path).get_input_details(0))
    shape, dtype = tuple(int(s) for s in d["shape"]), d["dtype"]
    if not _runs_in(model, ARENA_CEILING, shape, dtype):
        raise RuntimeError(f"{path}: TFLM cannot run the model even with a {ARENA_CEILING:,}-byte arena")
    lo, hi = 0, ARENA_CEILING  # lo fails, hi runs
    while hi - lo > ARENA_STEP:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _runs_in(model, mid, shape, dtype) else (mid, hi)
    return hi


class TFLMBackend:
    """The INT8 TFLite under the TFLM interpreter: int8 input quantised and outputs de-quantised with each
    tensor's (scale, zero point) exactly as `TFLiteBackend` does; batch run image by image."""

    def __init__(self, path: str | Path, arena_size: int | None = None, imgsz: int | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"TFLite model not found: {path}")
        model = path.read_bytes()
        self.arena_size = int(arena_size or min_arena_bytes(path))
        self.interpreter = _load(model, self.arena_size, path)
        litert = TFLiteBackend(path)  # names the outputs as LiteRT does (signature keys), same order as TFLM's
        self.output_names = [litert.output_names.get(d["index"], d["name"])
                             for d in litert.interpreter.get_output_details()]
        self.input = _detail(self.interpreter.get_input_details(0))
        self.outputs = [_detail(self.interpreter.get_output_details(k)) for k in range(len(self.output_names))]
        self.imgsz = imgsz or int(self.input["shape"][1])
        self.metadata, self.names = litert.metadata, litert.names
        self.name = f"tflm:{path.name}"
        self.params = None

    def raw(self, nhwc_int8: np.ndarray) -> list[np.ndarray]:
        """One image's integer outputs in the file's output order."""
        self.interpreter.set_input(nhwc_int8, 0)
        self.interpreter.invoke()
        return [np.array(self.interpreter.get_output(k)) for k in range(len(self.outputs))]

    def _run(self, x: np.ndarray) -> Outputs:
        nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        outs = [dequantize_output(y, d) for y, d in zip(self.raw(quantize_input(nhwc, self.input)), self.outputs)]
        (boxes, scores), _ = match_outputs(outs, self.output_names, _expected_n(x.shape[-1]))
        return boxes, scores

    def __call__(self, batch: np.ndarray) -> Outputs:
        return _run_fixed_batch(self._run, _check_batch(batch), 1)


def compare_with_litert_reference(path: str | Path, images: np.ndarray, arena_size: int | None = None) -> dict:
    """Run `images` (float32 NCHW in [0, 1]) through TFLM and through LiteRT's reference kernels
    (`BUILTIN_REF`, no XNNPACK); returns {images, max_abs_diff (integer output steps), identical}."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    micro = TFLMBackend(path, arena_size=arena_size)
    ref = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    inp = ref.get_input_details()[0]
    worst = 0
    for img in _check_batch(images):
        q = quantize_input(np.ascontiguousarray(img[None].transpose(0, 2, 3, 1)), inp)
        ref.set_tensor(inp["index"], q)
        ref.invoke()
        expected = [ref.get_tensor(d["index"]) for d in ref.get_output_details()]
        for got, want in zip(micro.raw(q), expected):
            worst = max(worst, int(np.abs(got.astype(np.int64) - want.astype(np.int64)).max()))
    return {"images": len(images), "max_abs_diff": worst, "identical": worst == 0}
