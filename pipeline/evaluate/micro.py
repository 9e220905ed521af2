"""The final INT8 TFLite under TensorFlow Lite Micro: mAP50 on the val split through the one evaluator, the
smallest tensor arena, and its outputs compared bit for bit with LiteRT's reference kernels on the first images."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config.stages import EvaluateParams
from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import YoloDataset
from pipeline.evaluate.evaluator import evaluate
from pipeline.infer.tflm import TFLMBackend, compare_with_litert_reference, min_arena_bytes

REFERENCE_IMAGES = 16  # val images run through both TFLM and LiteRT's reference kernels (~0.2 s each)
INTERVALS = ("map50_ci_low", "map50_ci_high", "map_ci_low", "map_ci_high")


def evaluate_micro(data_yaml: str | Path, tflite_path: str | Path, imgsz: int, p: EvaluateParams) -> dict[str, Any]:
    """{map50, map, intervals, images, arena_bytes, litert_reference: {images, max_abs_diff, identical}, seconds}."""
    t0 = time.perf_counter()
    data = load_data_yaml(data_yaml)
    val = YoloDataset(data.val, data.nc, imgsz, augment=None, names=data.names)
    arena = min_arena_bytes(tflite_path)
    backend = TFLMBackend(tflite_path, arena_size=arena)
    m = evaluate(backend, val, conf_thres=p.conf_thres, iou_thres=p.iou_thres, progress=True,
                 bootstrap=p.bootstrap_resamples, bootstrap_seed=p.bootstrap_seed)
    first = np.stack([np.asarray(val[i][0], np.float32) for i in range(min(REFERENCE_IMAGES, len(val)))])
    return {"map50": float(m["map50"]), "map": float(m["map"]), **{k: float(m[k]) for k in INTERVALS if k in m},
            "images": int(m["images"]), "arena_bytes": arena,
            "litert_reference": compare_with_litert_reference(tflite_path, first, arena_size=arena),
            "seconds": round(time.perf_counter() - t0, 1)}
