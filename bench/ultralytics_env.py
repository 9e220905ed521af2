"""Calls into the bench environment that holds Ultralytics (`.venv-bench`, made by `scripts/bench_env.sh`) and
runs bench/ultralytics_side.py there; Ultralytics is never imported into the project's own environment."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SIDE = REPO / "bench" / "ultralytics_side.py"


def bench_python() -> Path:
    """The bench environment's interpreter: $LEAFYOLO_BENCH_PYTHON, else .venv-bench/bin/python."""
    path = Path(os.environ.get("LEAFYOLO_BENCH_PYTHON") or REPO / ".venv-bench" / "bin" / "python")
    if not path.is_file():
        raise FileNotFoundError(f"bench environment not found: {path} (create it with `bash scripts/bench_env.sh`, "
                                "or point LEAFYOLO_BENCH_PYTHON at a Python that has ultralytics and torchvision)")
    return path


def run_side(args: list[str], cwd: Path, timeout: float = 7200) -> dict[str, Any]:
    """Run `ultralytics_side.py args` in the bench environment (cwd: a scratch folder, where Ultralytics may
    write); return its RESULT JSON. A failure raises with the command and the tail of its output."""
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(cwd / ".ultralytics"), "PYTHONPATH": ""}
    proc = subprocess.run([str(bench_python()), str(SIDE), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"ultralytics_side.py {' '.join(args)} failed (exit {proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def finish_onnx(path: Path) -> None:
    """The same onnxsim + checker pass the pipeline's own export applies, in place (atomic write)."""
    from pipeline.export.common import check_onnx, load_onnx, save_onnx
    from pipeline.export.onnx_export import simplify_onnx

    proto = simplify_onnx(load_onnx(path), path)
    check_onnx(proto, path)
    save_onnx(proto, path)
