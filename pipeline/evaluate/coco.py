"""COCO-style detection metrics computed by pycocotools (no hand-written AP).

Ground truth and detections are converted to in-memory COCO dicts: image ids are 1..n_images and category ids
are ``cls + 1`` (1..nc); boxes are xyxy original pixels converted to COCO xywh.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pipeline.evaluate.bootstrap import bootstrap_intervals
from pipeline.infer.postprocess import to_numpy

MAX_DETS: list[int] = [1, 10, 100]  # COCOeval default; we read the 100 column (summarize() needs all three)


def _xyxy_to_xywh(b: np.ndarray) -> np.ndarray:
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)


def _unpack_gt(item: Any, i: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int] | None]:
    """Accept ``(boxes, classes)`` or ``(boxes, classes, (h, w))`` or a dict with boxes/classes[/orig_shape]."""
    if isinstance(item, dict):
        boxes, classes, shape = item["boxes"], item["classes"], item.get("orig_shape")
    elif len(item) in (2, 3):
        boxes, classes = item[0], item[1]
        shape = item[2] if len(item) == 3 else None
    else:
        raise ValueError(f"gts[{i}]: expected (boxes, classes[, (h, w)]), got {len(item)} fields")
    b = to_numpy(boxes).astype(np.float64).reshape(-1, 4)
    c = to_numpy(classes).astype(np.int64).reshape(-1)
    if b.shape[0] != c.shape[0]:
        raise ValueError(f"gts[{i}]: {b.shape[0]} boxes but {c.shape[0]} classes")
    return b, c, (None if shape is None else (int(shape[0]), int(shape[1])))


def build_coco_gt(gts: Sequence[Any], nc: int, names: Sequence[str],
                  image_sizes: Sequence[tuple[int, int]] | None = None) -> dict:
    """In-memory COCO ground-truth dict (image ids 1..n, category ids 1..nc, iscrowd 0, area = w*h)."""
    images, anns = [], []
    for i, item in enumerate(gts):
        b, c, shape = _unpack_gt(item, i)
        if image_sizes is not None:
            shape = (int(image_sizes[i][0]), int(image_sizes[i][1]))
        h, w = shape if shape is not None else (0, 0)
        images.append({"id": i + 1, "height": h, "width": w, "file_name": str(i)})
        if c.size and (c.min() < 0 or c.max() >= nc):
            raise ValueError(f"gts[{i}]: class ids must be in [0, {nc}), got {sorted(set(c.tolist()))}")
        for box, cls in zip(_xyxy_to_xywh(b), c):
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(cls) + 1,
                         "bbox": [float(v) for v in box], "area": float(box[2] * box[3]), "iscrowd": 0})
    cats = [{"id": k + 1, "name": str(names[k])} for k in range(nc)]
    return {"info": {}, "images": images, "annotations": anns, "categories": cats}


def build_coco_dets(dets: Sequence[Any]) -> list[dict]:
    """Per-image ``[k, 6]`` (x1, y1, x2, y2, score, cls) -> COCO result list."""
    out = []
    for i, d in enumerate(dets):
        a = to_numpy(d).astype(np.float64).reshape(-1, 6)
        for box, score, cls in zip(_xyxy_to_xywh(a[:, :4]), a[:, 4], a[:, 5]):
            out.append({"image_id": i + 1, "category_id": int(cls) + 1,
                        "bbox": [float(v) for v in box], "score": float(score)})
    return out


def _empty_result(names: Sequence[str], n_gt: np.ndarray) -> dict:
    per = {str(n): {"ap50": 0.0, "ap": 0.0, "n_gt": int(n_gt[k])} for k, n in enumerate(names)}
    return {"map50": 0.0, "map": 0.0, "per_class": per, "pr_curve": {str(n): [] for n in names}}


def run_cocoeval(gt_dict: dict, det_list: list[dict]) -> COCOeval:
    """Run COCOeval (bbox, maxDets [1, 10, 100]) silently and return it, accumulated and summarized."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt_dict
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(det_list)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.params.maxDets = list(MAX_DETS)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def coco_eval(gts: Sequence[Any], dets: Sequence[Any], nc: int, names: Sequence[str] | None = None,
              image_sizes: Sequence[tuple[int, int]] | None = None, bootstrap: int = 0,
              bootstrap_seed: int = 0) -> dict:
    """COCO bbox evaluation of per-image detections against per-image ground truth.

    ``gts[i]`` is ``(boxes xyxy [n, 4], classes [n])`` (optionally with ``(h, w)`` as a third field, or pass
    ``image_sizes``); ``dets[i]`` is ``[k, 6]``; both in original image pixels.
    Returns ``{"map50", "map" (0.5:0.95), "per_class": {name: {"ap50", "ap", "n_gt"}},
    "pr_curve": {name: [(recall, precision), ...]}}`` (IoU 0.5, area all, maxDets 100).
    A class without ground truth gets ap50 = ap = 0.0, n_gt = 0, an empty curve, and is excluded from the
    means (pycocotools marks it -1). No detections at all (or no ground truth at all) gives zeros.
    With ``bootstrap`` > 0 the result also holds 95 % intervals over the images
    (``map50_ci_low``/``_high``, ``map_ci_low``/``_high``, ``map50_se``, ``map_se``; see pipeline/evaluate/bootstrap.py).
    """
    names = [str(k) for k in range(nc)] if names is None else [str(n) for n in names]
    if len(names) != nc:
        raise ValueError(f"coco_eval: {len(names)} names for nc={nc}")
    if len(gts) != len(dets):
        raise ValueError(f"coco_eval: {len(gts)} ground-truth images but {len(dets)} detection lists")
    gt_dict = build_coco_gt(gts, nc, names, image_sizes)
    n_gt = np.bincount([a["category_id"] - 1 for a in gt_dict["annotations"]], minlength=nc)
    det_list = build_coco_dets(dets)
    if not det_list or not gt_dict["annotations"]:
        empty = _empty_result(names, n_gt)
        return {**empty, **(bootstrap_intervals_of_zero(bootstrap) if bootstrap else {})}
    ev = run_cocoeval(gt_dict, det_list)
    m = ev.params.maxDets.index(100)
    a = ev.params.areaRngLbl.index("all")
    prec = ev.eval["precision"][:, :, :, a, m]  # [T, R, K]
    t50 = int(np.argmin(np.abs(ev.params.iouThrs - 0.5)))
    cat_index = {cid: k for k, cid in enumerate(ev.params.catIds)}
    per_class, curves = {}, {}
    ap50s, aps = [], []
    for k, name in enumerate(names):
        p = prec[:, :, cat_index[k + 1]]
        if (p > -1).any():
            ap50, ap = float(p[t50][p[t50] > -1].mean()), float(p[p > -1].mean())
            ap50s.append(ap50)
            aps.append(ap)
            curves[name] = [(float(r), float(v)) for r, v in zip(ev.params.recThrs, p[t50])]
        else:
            ap50, ap = 0.0, 0.0
            curves[name] = []
        per_class[name] = {"ap50": ap50, "ap": ap, "n_gt": int(n_gt[k])}
    return {
        "map50": float(np.mean(ap50s)) if ap50s else 0.0,
        "map": float(np.mean(aps)) if aps else 0.0,
        "per_class": per_class,
        "pr_curve": curves,
        **(bootstrap_intervals(ev, bootstrap, bootstrap_seed) if bootstrap else {}),
    }


def bootstrap_intervals_of_zero(resamples: int) -> dict:
    """The intervals of a result that is 0 on every resample (no detections or no ground truth)."""
    return {**{f"{m}_{k}": 0.0 for m in ("map50", "map") for k in ("ci_low", "ci_high", "se")},
            "map50_samples": np.zeros(resamples)}
