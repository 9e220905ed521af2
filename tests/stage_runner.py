"""Run the exact commands of dvc.yaml in a scratch folder (with its own params.yaml), for the stage tests."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ORDER = ("data", "teacher", "distill", "prune", "finetune", "calibrate", "onnx", "tflite", "evaluate", "gate")


def stage_command(stage: str) -> list[str]:
    cmd = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["cmd"]
    argv = shlex.split(cmd)
    assert argv[0] == "python", cmd
    return [sys.executable, *argv[1:]]


def run_stage(stage: str, workdir: Path, timeout: int = 600,
              prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run `stage`'s dvc.yaml command in `workdir`, with the repo's `web/` linked in when `workdir` has none (the
    stages check the web page's npm files before training, as they would in the project root). `prefix` goes before
    the command (an emulator: `("qemu-x86_64", "-cpu", "EPYC-Rome")`)."""
    workdir = Path(workdir)
    if not (workdir / "web").exists() and not (workdir / "web").is_symlink():
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "web").symlink_to(REPO / "web")
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}
    return subprocess.run([*prefix, *stage_command(stage)], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)


def merge(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` applied key by key, nested mappings merged (not replaced)."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def write_params(workdir: Path, **overrides: dict) -> Path:
    """tests/tiny_params.yaml with per-section overrides (nested keys merged), written to workdir/params.yaml."""
    params = merge(yaml.safe_load((REPO / "tests" / "tiny_params.yaml").read_text()), overrides)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path
