"""What travels with an exported file (class names, image size, variant, nc, training data), and where a TFLite
file keeps it (a `<file>.json` sidecar; ONNX files carry it in their metadata_props)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def sidecar_path(path: str | Path) -> Path:
    """Where the metadata (names, image size, variant) of an exported TFLite file is kept: `<file>.json`."""
    return Path(f"{path}.json")


def metadata(model: Any, names: list[str], imgsz: int, data: str | None) -> dict[str, Any]:
    """What travels with an exported file: class names, image size, variant, nc, task, training data."""
    return {"names": list(names), "imgsz": imgsz, "variant": model.variant, "nc": model.nc, "task": "detect",
            "data": data or ""}
