"""The ONE evaluator shared by every backend (torch, ONNX FP32/FP16/INT8, TFLite).

The dataset does the pre-processing (letterbox, /255, CHW); the backend only runs the graph; decoding, NMS,
mapping back to original pixels and COCO metrics are done here identically for all backends.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from pipeline.evaluate.coco import coco_eval
from pipeline.infer.backends import Backend
from pipeline.infer.postprocess import postprocess, scale_to_original, to_numpy


def targets_to_original(targets: Any, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """Dataset targets ``[n, 5]`` (cls, x1, y1, x2, y2) in letterboxed pixels -> (boxes xyxy [n, 4] in
    original pixels, classes [n] int64), using ``meta`` (ratio, pad, orig_shape)."""
    t = to_numpy(targets).astype(np.float32).reshape(-1, 5)
    boxes = scale_to_original(t[:, 1:5], meta["ratio"], meta["pad"], meta["orig_shape"])
    return boxes.reshape(-1, 4), t[:, 0].astype(np.int64)


def dataset_ground_truth(dataset: Any) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """(boxes, classes) in original pixels per item straight from the labels, when the dataset offers
    ``ground_truth()`` (YoloDataset); None otherwise (then the targets are mapped back per item)."""
    fn = getattr(dataset, "ground_truth", None)
    if not callable(fn):
        return None
    gt = fn()
    if len(gt) != len(dataset):
        raise ValueError(f"evaluate: dataset.ground_truth() has {len(gt)} entries for {len(dataset)} items")
    return [(np.asarray(g.boxes, np.float32).reshape(-1, 4), np.asarray(g.classes, np.int64)) for g in gt]


def _dataset_names(dataset: Any, nc: int, names: Sequence[str] | None) -> list[str]:
    names = names if names is not None else getattr(dataset, "names", None)
    if names is None:
        return [str(k) for k in range(nc)]
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    names = [str(n) for n in names]
    if len(names) != nc:
        raise ValueError(f"evaluate: {len(names)} class names but the model predicts {nc} classes")
    return names


def evaluate(
    backend: Backend,
    dataset: Any,
    conf_thres: float = 0.001,
    iou_thres: float = 0.6,
    batch_size: int = 8,
    progress: bool = True,
    names: Sequence[str] | None = None,
    max_det: int = 300,
    bootstrap: int = 0,
    bootstrap_seed: int = 0,
) -> dict:
    """Run ``backend`` over ``dataset`` (items ``(img [3,S,S], targets [n,5], meta)``) and compute COCO metrics.

    Ground truth comes from ``dataset.ground_truth()`` (original-pixel labels) when the dataset has it, else
    from each item's letterboxed targets mapped back with its meta. Items are read in order, in this process.

    Returns the :func:`pipeline.evaluate.coco.coco_eval` dict (with 95 % bootstrap intervals over the images when
    ``bootstrap`` > 0) plus ``images`` (count), ``seconds`` (total wall time) and ``infer_seconds`` (time spent
    inside the backend).
    """
    n = len(dataset)
    if n == 0:
        raise ValueError("evaluate: the dataset is empty")
    if getattr(dataset, "augment", None) is not None:
        raise ValueError("evaluate: the dataset has augmentation on; build the eval dataset with augment=None")
    labels = dataset_ground_truth(dataset)
    gts: list[tuple[np.ndarray, np.ndarray, tuple[int, int]]] = []
    dets: list[np.ndarray] = []
    nc: int | None = None
    t0 = time.perf_counter()
    infer = 0.0
    starts = range(0, n, batch_size)
    for start in tqdm(starts, desc=f"eval {backend.name}", unit="batch", disable=not progress):
        items = [dataset[i] for i in range(start, min(start + batch_size, n))]
        x = np.stack([to_numpy(img).astype(np.float32) for img, _, _ in items])
        imgsz = int(x.shape[-1])
        t1 = time.perf_counter()
        boxes, scores = backend(x)
        infer += time.perf_counter() - t1
        nc = int(scores.shape[-1])
        batch_dets = postprocess(boxes, scores, imgsz, conf_thres=conf_thres, iou_thres=iou_thres, max_det=max_det)
        for k, (det, (_, targets, meta)) in enumerate(zip(batch_dets, items)):
            shape = (int(meta["orig_shape"][0]), int(meta["orig_shape"][1]))
            dets.append(scale_to_original(det, meta["ratio"], meta["pad"], shape))
            gt = labels[start + k] if labels is not None else targets_to_original(targets, meta)
            gts.append((*gt, shape))
    assert nc is not None
    result = coco_eval(gts, dets, nc, _dataset_names(dataset, nc, names), bootstrap=bootstrap,
                       bootstrap_seed=bootstrap_seed)
    result.update(images=n, seconds=time.perf_counter() - t0, infer_seconds=infer)
    return result
