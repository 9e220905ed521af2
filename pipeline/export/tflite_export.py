"""FP32 ONNX -> full-INT8 TFLite (int8 input and outputs) through onnx2tf 1.28, calibrated on our own images.

Layout of the result: input `images` is NHWC int8 [1, S, S, 3] with scale 1/255 and zero point -128 when
calibrated on [0, 1] images (so int8 = uint8 pixel - 128 exactly); outputs keep the ONNX layout
`boxes` [1, N, 4] and `scores` [1, N, nc] (not transposed) but may come in another order and are named
`PartitionedCall:k`, so the mapping is recorded in the returned dict (`outputs`).

onnx2tf traps handled here:
- it downloads `calibration_image_sample_data_20x128x128x3_float32.npy` into the working directory for any
  4-D image input (for its internal ONNX-vs-TF checks) unless the file is there: we write it from OUR
  calibration images (NHWC float32 in [0, 1], the normalisation it expects) in a private work directory and
  chdir there for the conversion (cwd restored afterwards), so no network is used;
- the INT8 calibration itself uses `custom_input_op_name_np_data_path=[["images", npy, 0, 1]]` (NHWC float32
  [0, 1], mean 0, std 1 -> the representative data is exactly the model input);
- a full-INT8 conversion failure is only a warning inside onnx2tf, and some errors end in `sys.exit(1)`:
  both are turned into `ExportError` naming the ONNX file and quoting onnx2tf's log;
- scalar `Constant` operands (the `* stride` of the box branch) crash onnx2tf's strict-mode accuracy
  correction, and a `* stride` after the last conv costs ~stride/8 px of INT8 box error: the graph given to
  onnx2tf is first rewritten exactly by `graph_prep.prepare_for_onnx2tf`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.config.stages import QUANT_TYPES
from pipeline.export.common import INPUT_NAME, OUTPUT_NAMES, ExportError, check_images, check_parity, load_onnx, save_onnx
from pipeline.export.graph_prep import prepare_for_onnx2tf
from pipeline.io.atomic import atomic_copy

N_CHECK = 4  # calibration images the converted file is compared on against the ONNX
SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
ONNX2TF_RECURSION_LIMIT = 100_000  # onnx2tf walks the graph recursively; it asks for 2**31 - 1 at import
ONNX2TF_OPTIONS = {
    "output_integer_quantized_tflite": True,  # -> *_full_integer_quant.tflite (also float32/16, dynamic, int16)
    "input_quant_dtype": "int8",
    "output_quant_dtype": "int8",
    "non_verbose": True,  # onnx2tf log level "error"; the full log is kept in the work dir
}


@contextlib.contextmanager
def _captured_output(log_path: Path):
    """Send Python prints and the C++ (fd 1/2) chatter of TF/onnx2tf to `log_path`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            log.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _log_excerpt(log_path: Path, lines: int = 25) -> str:
    if not log_path.is_file():
        return ""
    text = [ln.replace("\x1b[31m", "").replace("\x1b[0m", "") for ln in log_path.read_text(errors="replace").splitlines()]
    errors = [ln for ln in text if "ERROR" in ln or "Error" in ln]
    picked = errors[-lines:] if errors else text[-lines:]
    return "\n".join(picked)


def _run_onnx2tf(onnx_path: Path, source: Path, workdir: Path, calib_npy: Path, options: dict) -> Path:
    """Run onnx2tf.convert in `workdir` (cwd restored); returns the saved_model folder."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out_folder = workdir / "tf"
    shutil.rmtree(out_folder, ignore_errors=True)  # never pick up a previous run's files
    log_path = workdir / "onnx2tf.log"
    cwd, recursion_limit = os.getcwd(), sys.getrecursionlimit()
    try:
        with _captured_output(log_path):
            import onnx2tf  # sets the recursion limit to 2**31 - 1 when first imported: restored below

            sys.setrecursionlimit(max(recursion_limit, ONNX2TF_RECURSION_LIMIT))
            os.chdir(workdir)
            onnx2tf.convert(
                input_onnx_file_path=str(source), output_folder_path=str(out_folder),
                custom_input_op_name_np_data_path=[[INPUT_NAME, str(calib_npy), [[[[0.0, 0.0, 0.0]]]],
                                                    [[[[1.0, 1.0, 1.0]]]]]],
                **options,
            )
    except SystemExit as e:  # onnx2tf reports many input errors with sys.exit(1)
        raise ExportError(f"onnx2tf failed on {onnx_path} (exit {e.code}):\n{_log_excerpt(log_path)}") from None
    except Exception as e:
        raise ExportError(
            f"onnx2tf failed on {onnx_path}: {type(e).__name__}: {e}\n{_log_excerpt(log_path)}"
        ) from e
    finally:
        os.chdir(cwd)
        # unrestored, a later parse of a deeply nested YAML or JSON file in this process recursed 100,000 levels
        # deep (minutes) instead of stopping with RecursionError at Python's limit
        sys.setrecursionlimit(recursion_limit)
    return out_folder


def require_fp32(model, onnx_path: Path) -> None:
    """onnx2tf 1.x cannot read a QDQ (NNCF) ONNX: refuse it with the file named."""
    if {"QuantizeLinear", "DequantizeLinear"} & {n.op_type for n in model.graph.node}:
        raise ExportError(f"{onnx_path}: QDQ (quantised) ONNX given; onnx2tf needs the FP32 ONNX")


@contextlib.contextmanager
def onnx2tf_run(fp32_onnx: Path, model, images_nchw: np.ndarray, data_name: str, workdir: str | Path | None,
                options: dict, widen: str = "peak"):
    """Convert `model` (loaded from `fp32_onnx`) with onnx2tf in a work folder; yield (work, saved_model folder).

    The folder gets onnx2tf's check sample (from `images_nchw`, so nothing is downloaded), the images as NHWC
    float32 `data_name` (calibration / check data) and the `graph_prep`-rewritten model. `workdir` is kept;
    without it a temporary folder is used and removed when the block ends, so callers copy what they need out
    of it inside the block.
    """
    tmp = None if workdir else tempfile.mkdtemp(prefix="onnx2tf_")
    work = Path(workdir or tmp).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        nhwc = np.ascontiguousarray(images_nchw.transpose(0, 2, 3, 1), dtype=np.float32)
        np.save(work / SAMPLE_FILE, nhwc[:20])  # onnx2tf's own check data: read from cwd, never downloaded
        np.save(work / data_name, nhwc)
        source = work / "model.onnx"
        save_onnx(prepare_for_onnx2tf(model, widen), source)
        yield work, _run_onnx2tf(fp32_onnx, source, work, work / data_name, options)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _quant(detail: dict) -> dict:
    scale, zp = detail["quantization"]
    return {"name": detail["name"], "index": int(detail["index"]), "shape": [int(s) for s in detail["shape"]],
            "dtype": np.dtype(detail["dtype"]).name, "scale": float(scale), "zero_point": int(zp)}


def compare_tflite(tflite_path: str | Path, onnx_path: str | Path, images: np.ndarray) -> dict:
    """Per ONNX output: the matching TFLite output (position, name, quantisation) and max/mean abs diff, both run
    through the runtime layer (LiteRT with the one (de)quantisation and output-matching rule, onnxruntime)."""
    from pipeline.export.onnx_export import run_onnx
    from pipeline.infer.backends import TFLiteBackend

    ref = run_onnx(onnx_path, images)
    backend = TFLiteBackend(tflite_path)
    got = dict(zip(OUTPUT_NAMES, (np.concatenate(parts) for parts in
                                  zip(*(backend(images[i:i + 1]) for i in range(len(images)))))))
    details = backend.interpreter.get_output_details()
    report = {}
    for name, pos in zip(OUTPUT_NAMES, backend.order):
        d = np.abs(got[name] - ref[name])
        report[name] = {**_quant(details[pos]), "position": int(pos),
                        "transposed": tuple(details[pos]["shape"][1:]) != ref[name].shape[1:],
                        "max_abs_diff": float(d.max()), "mean_abs_diff": float(d.mean())}
    return report


def export_tflite_int8(fp32_onnx: str | Path, out_dir: str | Path, calib_images: np.ndarray,
                       workdir: str | Path | None = None, out_path: str | Path | None = None,
                       keep_float32: bool = True, quant_type: str = "per-tensor", widen: str = "peak") -> dict:
    """Convert the FP32 (simplified) ONNX to a full-INT8 TFLite at `out_path` (default
    `out_dir/model_int8.tflite`), calibrated on `calib_images` (float32 NCHW [n, 3, S, S] in [0, 1]).

    The INT8 file is verified (int8 input/outputs, output mapping, diff vs ONNX on the first `N_CHECK`
    calibration images, within `PARITY["tflite_int8"]`) before it is copied atomically over `out_path`; any
    failure raises ExportError and leaves existing files in `out_dir` untouched. With `keep_float32`,
    `model_float32.tflite` is kept beside it for debugging. `workdir`: keep onnx2tf's work files (saved_model,
    all .tflite variants, log) there; default a temporary folder that is removed. `quant_type`: one weight scale
    per filter ("per-tensor") or per output channel ("per-channel"). `widen`: graph_prep's rewrite 4 (studies only;
    the pipeline keeps "peak"). Do not feed a QDQ (NNCF) ONNX: onnx2tf 1.x cannot read it.

    Returns {path, size_bytes, input: {name, shape, dtype, scale, zero_point, layout: "NHWC"},
    outputs: {boxes|scores: {position, name, shape, dtype, scale, zero_point, transposed, max_abs_diff,
    mean_abs_diff}}, output_order, float32_path, float32_diff, onnx2tf_options, seconds}.
    """
    t0 = time.perf_counter()
    fp32_onnx, out_dir = Path(fp32_onnx), Path(out_dir)
    out_path = Path(out_path) if out_path else out_dir / "model_int8.tflite"
    model = load_onnx(fp32_onnx)
    if quant_type not in QUANT_TYPES:
        raise ValueError(f"quant_type must be one of {QUANT_TYPES}, got {quant_type!r}")
    options = {**ONNX2TF_OPTIONS, "quant_type": quant_type}
    require_fp32(model, fp32_onnx)
    calib = check_images(calib_images, "calib_images")
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) == 4 and dims[-1] and dims[-1] != calib.shape[-1]:
        raise ValueError(f"calib_images are {calib.shape[-1]}px but {fp32_onnx} expects {dims[-1]}px")

    from pipeline.infer.backends import TFLiteBackend

    with onnx2tf_run(fp32_onnx, model, calib, "calibration_nhwc_float32.npy", workdir, options,
                     widen) as (work, tf_dir):
        int8_file, f32_file = tf_dir / "model_full_integer_quant.tflite", tf_dir / "model_float32.tflite"
        if not int8_file.is_file():
            raise ExportError(f"onnx2tf produced no full-INT8 TFLite for {fp32_onnx}:\n"
                              f"{_log_excerpt(work / 'onnx2tf.log')}")
        check = calib[:N_CHECK]
        outputs = compare_tflite(int8_file, fp32_onnx, check)
        check_parity("tflite_int8", {n: o["mean_abs_diff"] for n, o in outputs.items()}, calib.shape[-1], out_path)
        info = _quant(TFLiteBackend(int8_file).input)
        bad = [n for n, o in outputs.items() if o["dtype"] != "int8"] + ([INPUT_NAME] if info["dtype"] != "int8" else [])
        if bad:
            raise ExportError(f"{int8_file}: tensors {bad} are not int8 (onnx2tf options {options})")
        result = {
            "input": {**info, "layout": "NHWC"}, "outputs": outputs,
            "output_order": [n for n, _ in sorted(outputs.items(), key=lambda kv: kv[1]["position"])],
            "onnx2tf_options": options, "source_onnx": str(fp32_onnx),
        }
        if keep_float32 and f32_file.is_file():
            f32 = compare_tflite(f32_file, fp32_onnx, check)
            f32_out = atomic_copy(f32_file, out_path.with_name(out_path.stem.removesuffix("_int8") + "_float32.tflite"))
            result["float32_path"] = str(f32_out)
            result["float32_diff"] = {n: {k: o[k] for k in ("max_abs_diff", "mean_abs_diff")} for n, o in f32.items()}
        atomic_copy(int8_file, out_path)
    result.update(path=str(out_path), size_bytes=out_path.stat().st_size, seconds=time.perf_counter() - t0)
    return result
