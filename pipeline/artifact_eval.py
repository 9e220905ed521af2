"""Evaluate every artifact of the chain with its own runtime through the one shared evaluator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.backends import OnnxBackend, TFLiteBackend, TorchBackend
from pipeline.checkpoint import count_params, load_model
from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import YoloDataset
from pipeline.evaluate import evaluate
from pipeline.latency import measure_latency
from pipeline.stage_params import EvaluateParams


def open_backend(path: Path) -> tuple[Any, int | None, int | None]:
    """(backend, params when known from the file, imgsz when known from the file)."""
    if path.suffix == ".pt":
        model, ckpt = load_model(path)
        return TorchBackend(model), count_params(model), int(ckpt["imgsz"])
    if path.suffix == ".onnx":
        return OnnxBackend(path, num_threads=1), None, None
    if path.suffix == ".tflite":
        return TFLiteBackend(path, num_threads=1), None, None
    raise ValueError(f"{path}: unsupported artifact type (expected .pt, .onnx or .tflite)")


def mean_pr_curve(pr_curve: dict[str, list]) -> list[dict[str, float]]:
    """Precision at each recall level, averaged over the classes that have a curve."""
    curves = [np.asarray(c, dtype=float) for c in pr_curve.values() if len(c)]
    if not curves:
        return []
    recall = curves[0][:, 0]
    precision = np.mean([c[:, 1] for c in curves], axis=0)
    return [{"recall": float(r), "precision": float(p)} for r, p in zip(recall, precision)]


def evaluate_artifacts(data_yaml: str | Path, artifacts: dict[str, Path], reference_params: int, imgsz: int,
                       p: EvaluateParams, log=print) -> dict[str, Any]:
    """Returns {'artifacts': {name: figures}, 'pr_curve': {...}} for the named artifact files."""
    data = load_data_yaml(data_yaml)
    val = YoloDataset(data.val, data.nc, imgsz, augment=None, names=data.names)
    results: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for i, (name, path) in enumerate(artifacts.items(), 1):
        log(f"  ({i}/{len(artifacts)}) {name}: {path}")
        backend, params, file_imgsz = open_backend(Path(path))
        if file_imgsz is not None and file_imgsz != imgsz:
            raise ValueError(f"{path} was trained at {file_imgsz}px but the chain is evaluated at {imgsz}px")
        m = evaluate(backend, val, conf_thres=p.conf_thres, iou_thres=p.iou_thres, progress=True)
        results[name] = {"map50": float(m["map50"]), "map": float(m["map"]), "size_bytes": Path(path).stat().st_size,
                         "params": params if params is not None else reference_params,
                         "per_class_ap50": {k: float(v["ap50"]) for k, v in m["per_class"].items()},
                         **measure_latency(backend, imgsz, p.latency_runs, p.latency_warmup)}
        curves[name] = m["pr_curve"]
    return {"artifacts": results, "pr_curve": curves}
