"""Metrics and report files: JSON written atomically, read with an error that names the stage to run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.io.atomic import atomic_write_text


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON via a temp file and rename, so a crash never leaves a half-written metrics file."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=float) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected metrics file not found: {path} (run the stage that writes it first)")
    return json.loads(path.read_text())
