"""A .tflite file as the flatbuffer schema's object tree and back (read, change, write), for the size report, the
stripping and the metadata entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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


def write_model(model: Any) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
