"""What the later stages need from the machine, checked before any training (by the data stage and again at the
start of each training stage): the Python packages each stage imports, and the onnxruntime-web files that the
`web` stage copies from `web/node_modules`. Every missing piece is named at once, with the command that installs it.

Only presence is checked (`importlib.util.find_spec`, which imports nothing), so the check costs milliseconds.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pipeline.io.ort_web import pinned_ort

# Import name -> pip distribution, by the stage that imports it.
PYTHON_NEEDS: dict[str, dict[str, str]] = {
    "teacher": {"torch": "torch", "dvclive": "dvclive"},
    "prune": {"torch_pruning": "torch-pruning"},
    "calibrate": {"nncf": "nncf"},
    "onnx": {"onnx": "onnx", "onnxsim": "onnxsim", "onnxruntime": "onnxruntime"},
    "tflite": {"onnx2tf": "onnx2tf", "tensorflow": "tensorflow-cpu", "tf_keras": "tf-keras",
               "onnx_graphsurgeon": "onnx-graphsurgeon", "sng4onnx": "sng4onnx", "psutil": "psutil",
               "ai_edge_litert": "ai-edge-litert", "tflite_micro": "tflite-micro"},
    "evaluate": {"pycocotools": "pycocotools", "onnxruntime": "onnxruntime", "ai_edge_litert": "ai-edge-litert",
                 "tflite_micro": "tflite-micro"},
    "plots": {"matplotlib": "matplotlib"},
}
ONNX2TF_COMPANIONS = ("tensorflow", "tf_keras", "onnx_graphsurgeon", "sng4onnx")  # imported by onnx2tf, not by us
PYTHON_FIX = "install the pinned set: `bash scripts/env.sh` (or `pip install -r requirements.txt`)"
WEB_LOCK = "web/package-lock.json"  # as dvc.yaml's `web` stage names it, relative to the project root


class EnvironmentProblem(RuntimeError):
    """The machine lacks something a later stage needs; the message lists every missing piece and its fix."""


def _missing_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):  # a broken parent package or a module with no spec
        return True


def missing_python() -> dict[str, list[str]]:
    """pip distribution -> the stages that need it, for every module that cannot be found."""
    missing: dict[str, list[str]] = {}
    for stage, modules in PYTHON_NEEDS.items():
        for module, dist in modules.items():
            if _missing_module(module):
                missing.setdefault(dist, []).append(stage)
    return missing


def environment_problems(web_lock: str | Path = WEB_LOCK) -> list[str]:
    """One line per missing piece (empty when the machine has everything the chain needs)."""
    problems = [f"Python package {dist} (needed by the {', '.join(stages)} stage{'s' * (len(stages) > 1)}) "
                f"is not installed; {PYTHON_FIX}" for dist, stages in missing_python().items()]
    try:
        pinned_ort(web_lock)
    except (FileNotFoundError, ValueError) as e:
        problems.append(f"web stage: {e}")
    return problems


def check_environment(web_lock: str | Path = WEB_LOCK) -> None:
    """Raise EnvironmentProblem listing everything the later stages would fail on."""
    problems = environment_problems(web_lock)
    if problems:
        raise EnvironmentProblem("this machine lacks what later stages need (checked before any training):\n  - "
                                 + "\n  - ".join(problems))
