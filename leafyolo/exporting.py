"""`LEAFYOLO.export` and `quantize_model`: pick the pipeline exporter for the format, calibrate INT8 on training
images, and record the class names / image size in (ONNX, TorchScript) or beside (TFLite `<file>.json`) the exported
file."""

from __future__ import annotations

import copy
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from leafyolo.metadata import metadata, sidecar_path
from leafyolo.options import ExportOptions
from pipeline.config.stages import QUANT_TYPES
from pipeline.data.calibration import draw_calibration_images
from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.labels import list_images
from pipeline.export.common import check_images, save_onnx
from pipeline.export.nms_graph import export_nms_onnx
from pipeline.export.onnx_export import export_onnx
from pipeline.export.quantize import load_calibration_set, quantize_onnx_int8
from pipeline.export.tflite_export import export_tflite_int8
from pipeline.export.tflite_float import export_tflite_float
from pipeline.export.tflite_size import STRIP_CHECK, strip_tflite
from pipeline.io.atomic import atomic_write_bytes
from pipeline.io.file_metadata import embed_tflite_metadata
from pipeline.model.script import script_model

FORMATS = ("onnx", "tflite", "torchscript")
TORCHSCRIPT_META = "metadata.json"  # the extra file of a TorchScript export: names, imgsz, ...


def calibration_images(source: Any, imgsz: int, n: int, seed: int = 0) -> np.ndarray:
    """float32 NCHW [0, 1] calibration images from a data.yaml (a seeded subset of its train split, as the
    `calibrate` stage draws them), a `.npy` calibration set, or an array."""
    if isinstance(source, np.ndarray):
        images = check_images(source, "calibration images")
    elif str(source).endswith(".npy"):
        images = load_calibration_set(source)
    elif str(source).endswith((".yaml", ".yml")):
        available = len(list_images(load_data_yaml(source).train))
        if n > available:
            print(f"calibrating on all {available} training images of {source} (fewer than {n})", flush=True)
        return draw_calibration_images(source, imgsz, min(n, available), seed)
    else:
        raise ValueError(f"calibration data must be a data.yaml, a .npy calibration set or an image array, "
                         f"got {source!r}")
    if images.shape[-1] != imgsz:
        raise ValueError(f"calibration images are {images.shape[-1]}px but the export is at {imgsz}px")
    return images[:n]


def write_onnx_metadata(path: Path, meta: dict[str, Any]) -> None:
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=json.dumps(v) if not isinstance(v, str) else v)
    save_onnx(model, path)


def default_path(variant: str, ckpt_path: Path | None, fmt: str, o: ExportOptions, imgsz: int) -> Path:
    kind = "int8" if o.int8 else ("fp16" if o.fp16 else "nms" if o.include_nms else "")
    if fmt == "tflite":
        kind = "int8" if o.int8 else ("float16" if o.fp16 else "float32")
    suffix = f"_{kind}" if kind else ""
    if ckpt_path is not None:
        return ckpt_path.with_name(f"{ckpt_path.stem}{suffix}.{fmt}")
    return Path("runs/export") / f"{variant}_{imgsz}{suffix}.{fmt}"


def _check(o: ExportOptions, fmt: str, imgsz: int) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {FORMATS}, got {o.format!r}")
    if imgsz % 32:
        raise ValueError(f"img_size must be a multiple of 32, got {imgsz}")
    if o.fp16 and o.int8:
        raise ValueError("choose fp16=True or int8=True, not both")
    if o.include_nms and (fmt != "onnx" or o.fp16 or o.int8):
        raise ValueError("include_nms=True is for the FP32 ONNX only (format='onnx', fp16=False, int8=False): "
                         "NMS stays out of every quantised or TFLite graph")
    if fmt == "torchscript" and (o.fp16 or o.int8):
        raise ValueError("TorchScript exports the FP32 model (any batch and size); for fp16 / int8 use format='onnx' "
                         "or format='tflite'")
    if o.quant_type not in QUANT_TYPES:
        raise ValueError(f"quant_type must be one of {QUANT_TYPES}, got {o.quant_type!r}")
    if fmt == "tflite" and o.dynamic:
        raise ValueError("dynamic=True is for ONNX; TFLite files take batch 1 (our LiteRT backend loops over images)")


def export_onnx_int8(model: Any, path: Path, imgsz: int, calib: np.ndarray, meta: dict[str, Any], opset: int = 13,
                     simplify: bool = True, dynamic: bool = False, preset: str = "mixed") -> Path:
    """FP32 ONNX -> NNCF INT8 QDQ ONNX at `path` (what the `calibrate` stage writes), with `meta` in the file."""
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_onnx(copy.deepcopy(model), fp32, imgsz, opset=opset, simplify=simplify, dynamic_batch=dynamic)
        quantize_onnx_int8(fp32, path, calib, preset=preset)
    write_onnx_metadata(path, meta)
    return path


def export_torchscript(model: Any, path: Path, imgsz: int, meta: dict[str, Any]) -> Path:
    """`torch.jit.script` of the model (outputs checked equal to eager at `imgsz`), saved with `meta` as the extra
    file `metadata.json`: `torch.jit.load(path, _extra_files={'metadata.json': ''})` reads both back."""
    scripted = script_model(model, check_sizes=(imgsz,), batch=1)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer, _extra_files={TORCHSCRIPT_META: json.dumps(meta)})
    atomic_write_bytes(path, buffer.getvalue())
    return path


def export_model(model: Any, o: ExportOptions, names: list[str], default_imgsz: int, data: str | None,
                 ckpt_path: Path | None) -> Path:
    """Export the facade's module `model` (its class `names`, the `data` it was trained on, the checkpoint its
    weights came from) as `o` asks."""
    fmt = o.format.lower()
    imgsz = int(o.img_size or default_imgsz)
    _check(o, fmt, imgsz)
    path = Path(o.file) if o.file else default_path(model.variant, ckpt_path, fmt, o, imgsz)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = metadata(model, names, imgsz, data)
    calib = None
    if o.int8:
        source = o.data or data
        if source is None:
            raise ValueError("int8=True needs calibration images: pass data='data.yaml' (its train split is used)")
        calib = calibration_images(source, imgsz, o.calib_images)
    source_model, model = model, copy.deepcopy(model)  # the exporters move the model to CPU / eval in place
    if fmt == "onnx" and o.int8:
        export_onnx_int8(source_model, path, imgsz, calib, meta, o.opset_version, o.simplify, o.dynamic)
    elif fmt == "onnx":
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = Path(tmp) / "fp32.onnx" if (o.fp16 or o.include_nms) else path
            export_onnx(model, fp32, imgsz, opset=o.opset_version, simplify=o.simplify, dynamic_batch=o.dynamic,
                        fp16_path=path if o.fp16 else None)
            if o.include_nms:
                export_nms_onnx(fp32, path, imgsz, o.nms_conf, o.nms_iou, o.max_det)
        write_onnx_metadata(path, meta)
    elif fmt == "torchscript":
        export_torchscript(model, path, imgsz, meta)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = Path(tmp) / "fp32.onnx"
            export_onnx(model, fp32, imgsz, opset=o.opset_version, simplify=o.simplify)
            if o.int8:
                export_tflite_int8(fp32, path.parent, calib, out_path=path, keep_float32=False,
                                   quant_type=o.quant_type)
            else:
                export_tflite_float(fp32, path, half=o.fp16)
        embed_tflite_metadata(path, path, meta)  # the file alone says what it detects
        if o.int8:  # the file the tflite stage ships: unread bytes removed, outputs checked bit-identical
            strip_tflite(path, path, calib[:STRIP_CHECK])
        sidecar_path(path).write_text(json.dumps(meta, indent=2) + "\n")  # kept for tools that read the sidecar
    size = path.stat().st_size
    print(f"exported {path} ({size:,} bytes, {size / 1e6:.2f} MB)", flush=True)
    return path
