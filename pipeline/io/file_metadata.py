"""What travels inside every exported file, so a file alone says what it detects: class names, image size, variant,
nc, task, training data and, for an INT8 TFLite, the input quantisation.

ONNX files keep it in `metadata_props` (one entry per key, non-strings JSON-encoded). TFLite files keep it in a
flatbuffer metadata entry named `leafyolo` (UTF-8 JSON); interpreters never read it, so outputs are unchanged
(the tflite stage checks that bit for bit), and the stripping of converter metadata keeps it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx

from pipeline.io.atomic import atomic_write_bytes
from pipeline.io.tflite_file import read_bytes, read_model, schema, write_model

TFLITE_KEY = "leafyolo"


def file_metadata(variant: str, nc: int, names: list[str], imgsz: int, data: str | None = None) -> dict[str, Any]:
    """The common record: names (one per class), imgsz, variant, nc, task, data (the training data.yaml or '')."""
    if len(names) != nc:
        raise ValueError(f"{len(names)} class names for a model that predicts {nc} classes: {names}")
    return {"names": [str(n) for n in names], "imgsz": int(imgsz), "variant": str(variant), "nc": int(nc),
            "task": "detect", "data": str(data or "")}


def set_onnx_metadata(model: onnx.ModelProto, meta: dict[str, Any]) -> onnx.ModelProto:
    """Replace `model`'s metadata_props with `meta` (in place; returns the model)."""
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v if isinstance(v, str) else json.dumps(v))
    return model


def decode_value(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value  # a plain string (e.g. a variant name written by another tool)


def read_onnx_metadata(model: onnx.ModelProto | str | Path) -> dict[str, Any]:
    """metadata_props as a dict with JSON values decoded ({} when the file has none)."""
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model), load_external_data=False)
    return {p.key: decode_value(p.value) for p in proto.metadata_props}


def embed_tflite_metadata(src: str | Path, dst: str | Path, meta: dict[str, Any]) -> int:
    """Write `src` with `meta` as its `leafyolo` metadata entry (replacing an older one) to `dst`, atomically;
    returns the bytes written."""
    model = read_model(src)
    name = TFLITE_KEY.encode()
    for m in [m for m in (model.metadata or []) if m.name == name]:
        model.buffers[m.buffer].data = None
        model.metadata.remove(m)
    buffer = schema().BufferT()
    buffer.data = list(json.dumps(meta, sort_keys=True).encode())
    model.buffers.append(buffer)
    entry = schema().MetadataT()
    entry.name, entry.buffer = name, len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    data = write_model(model)
    atomic_write_bytes(dst, data)
    return len(data)


def read_tflite_metadata(path: str | Path) -> dict[str, Any]:
    """The `leafyolo` metadata entry of a .tflite file ({} when it has none); read in place from the flatbuffer."""
    model = schema().Model.GetRootAsModel(read_bytes(path), 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == TFLITE_KEY.encode():
            if not 0 <= entry.Buffer() < model.BuffersLength():  # the flatbuffer verifier does not check indices
                raise ValueError(f"{path}: its {TFLITE_KEY!r} metadata points at buffer {entry.Buffer()} of "
                                 f"{model.BuffersLength()}; expected an existing buffer")
            raw = model.Buffers(entry.Buffer()).DataAsNumpy()
            try:
                meta = json.loads(bytes(raw).decode())
            except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as e:  # TypeError: an empty buffer (0)
                raise ValueError(f"{path}: its {TFLITE_KEY!r} metadata is not UTF-8 JSON: {e}") from e
            if not isinstance(meta, dict):
                raise ValueError(f"{path}: its {TFLITE_KEY!r} metadata is {type(meta).__name__}; expected a JSON object")
            return meta
    return {}
