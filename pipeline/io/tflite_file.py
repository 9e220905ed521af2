"""A .tflite file as the flatbuffer schema's object tree and back (read, change, write), for the size report, the
stripping and the metadata entry.

`write_model` writes each distinct vector, string and small table once: a flatbuffer field holds an offset, so
tables whose vectors are equal (the all-zero int64 zero points of every per-channel weight and bias with the same
channel count, equal shapes) can point at one copy, and so can tensors with equal quantisation tables, activation
tensors of equal shape and quantisation, and operators with equal options. The runtimes read the same values
either way; the object API's own `Pack` writes a copy per table (about 16 bytes per output channel of every
convolution, and ~2 KB of repeated small tables).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np


def schema():
    """The TFLite flatbuffer schema module shipped with LiteRT."""
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def read_bytes(path: str | Path) -> bytes:
    data = Path(path).read_bytes()
    if data[4:8] != b"TFL3":
        raise ValueError(f"{path}: not a TFLite flatbuffer (expected the TFL3 identifier)")
    return data


def read_model(path: str | Path) -> Any:
    """The file as the schema's object tree (`ModelT`)."""
    s = schema()
    return s.ModelT.InitFromObj(s.Model.GetRootAsModel(read_bytes(path), 0))


def read_root(path: str | Path) -> Any:
    """The file's root table (`Model`, read in place: field positions are offsets into the file)."""
    return schema().Model.GetRootAsModel(read_bytes(path), 0)


class _SharingBuilder(flatbuffers.Builder):
    """A builder that returns the earlier offset for a vector or string equal to one already written. An earlier
    object lies at a higher address of the (back to front) buffer, so any later table can refer to it."""

    def __init__(self, size: int):
        super().__init__(size)
        self._written: dict[tuple, int] = {}

    def CreateNumpyVector(self, x: np.ndarray) -> int:  # noqa: N802 (flatbuffers' name)
        key = ("vector", x.dtype.str, x.tobytes())
        if key not in self._written:
            self._written[key] = super().CreateNumpyVector(x)
        return self._written[key]

    def CreateString(self, s: str | bytes, encoding: str = "utf-8", errors: str = "strict") -> int:  # noqa: N802
        key = ("string", s.encode(encoding, errors) if isinstance(s, str) else bytes(s))
        if key not in self._written:
            self._written[key] = super().CreateString(s, encoding, errors)
        return self._written[key]


def _key(table: Any) -> tuple:
    """Equal for tables whose fields are equal. Arrays compare by bytes; a field of a kind not handled here (a
    nested table) compares by its repr, which names the object, so such tables are never shared."""
    fields = []
    for name, value in sorted(vars(table).items()):
        if isinstance(value, np.ndarray):
            value = (value.dtype.str, value.shape, value.tobytes())
        elif isinstance(value, _Once):
            value = value.key
        else:
            value = repr(value)
        fields.append((name, value))
    return type(table).__name__, tuple(fields)


class _Once:
    """Stands in for an object-API table while packing: equal tables are packed once and share the offset."""

    def __init__(self, table: Any, written: dict):
        self.table, self.written, self.key = table, written, _key(table)

    def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802 (the object API's name)
        if self.key not in self.written:
            self.written[self.key] = self.table.Pack(builder)
        return self.written[self.key]


def write_model(model: Any) -> bytes:
    """The object tree as .tflite bytes, each distinct vector, string, quantisation table, tensor and operator
    options table written once. `model` itself is left as it was."""
    model = copy.deepcopy(model)
    written: dict = {}
    for sg in model.subgraphs or []:
        for t in sg.tensors or []:
            if t.quantization is not None:
                t.quantization = _Once(t.quantization, written)
        sg.tensors = [_Once(t, written) for t in sg.tensors or []]
        for op in sg.operators or []:
            if op.builtinOptions is not None:
                op.builtinOptions = _Once(op.builtinOptions, written)
    builder = _SharingBuilder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
