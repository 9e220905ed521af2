"""Evaluate every artifact of the chain with its own runtime through the one shared evaluator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config.stages import EvaluateParams
from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import YoloDataset
from pipeline.evaluate.bootstrap import paired_interval
from pipeline.evaluate.evaluator import evaluate
from pipeline.infer.backends import open_model
from pipeline.infer.latency import measure_latency

INTERVAL_KEYS = ("map50_ci_low", "map50_ci_high", "map50_se", "map_ci_low", "map_ci_high", "map_se")


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
    """Returns {'artifacts': {name: figures}, 'pr_curve': {...}, 'map50_samples': {name: bootstrap mAP50s}} for
    the named artifact files."""
    data = load_data_yaml(data_yaml)
    val = YoloDataset(data.val, data.nc, imgsz, augment=None, names=data.names)
    results: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    samples: dict[str, np.ndarray] = {}  # bootstrap mAP50s, paired across artifacts (same images, same seed)
    for i, (name, path) in enumerate(artifacts.items(), 1):
        log(f"  ({i}/{len(artifacts)}) {name}: {path}")
        # ONNX files are scored with their graph executed as written (onnxruntime's fused INT8 kernels are not
        # deterministic) and timed with the default session users deploy
        backend = open_model(path, num_threads=1, exact=True)
        if backend.imgsz is not None and backend.imgsz != imgsz:
            raise ValueError(f"{path} takes {backend.imgsz}px images but the chain is evaluated at {imgsz}px")
        m = evaluate(backend, val, conf_thres=p.conf_thres, iou_thres=p.iou_thres, progress=True,
                     bootstrap=p.bootstrap_resamples, bootstrap_seed=p.bootstrap_seed)
        intervals = {k: float(m[k]) for k in INTERVAL_KEYS if k in m}
        results[name] = {"map50": float(m["map50"]), "map": float(m["map"]), **intervals,
                         "size_bytes": Path(path).stat().st_size,
                         "params": backend.params if backend.params is not None else reference_params,
                         "per_class_ap50": {k: float(v["ap50"]) for k, v in m["per_class"].items()},
                         **measure_latency(open_model(path, num_threads=1) if Path(path).suffix == ".onnx" else backend,
                                           imgsz, p.latency_runs, p.latency_warmup)}
        curves[name] = m["pr_curve"]
        if "map50_samples" in m:
            samples[name] = m["map50_samples"]
    return {"artifacts": results, "pr_curve": curves, "map50_samples": samples}


def final_figures(figures: dict[str, Any], samples: dict[str, np.ndarray]) -> dict[str, Any]:
    """What the gate and users' CI read: the INT8 TFLite's figures, its mAP50 drop from the FP32 fine-tuned model
    and the fraction of that mAP50 it keeps; with bootstrap samples, the drop's paired 95 % interval."""
    fp32, final = figures["finetune"], figures["tflite_int8"]
    out = {k: final[k] for k in ("map50", "map", "size_bytes", "params", *INTERVAL_KEYS) if k in final}
    out["fp32_map50"] = fp32["map50"]
    out["int8_drop_map50"] = fp32["map50"] - final["map50"]
    out["int8_retention"] = final["map50"] / fp32["map50"] if fp32["map50"] > 0 else 0.0
    if "finetune" in samples and "tflite_int8" in samples:
        lo, hi = paired_interval(samples["finetune"], samples["tflite_int8"])
        out.update(int8_drop_map50_ci_low=lo, int8_drop_map50_ci_high=hi)
    return out
