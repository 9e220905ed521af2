"""Post-processing shared by every backend: anchors, box decoding, NMS, mapping back to the original image.

Everything here is numpy in / numpy out (torch tensors are accepted and converted). Decoding and NMS are
deliberately kept outside every exported graph (see CONTRACTS.md), so FP32, FP16 and INT8 models share them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.model.variants import STRIDES

MAX_WH = 7680.0  # per-class offset for batched NMS; larger than any letterboxed input
MAX_NMS = 30000  # candidates kept (by score) before NMS


def to_numpy(x: Any) -> np.ndarray:
    """Convert a torch tensor / array-like to a numpy array (no copy when already numpy)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def make_anchors(imgsz: int, strides: Sequence[int] = STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """Anchor points ``[N, 2]`` (x, y) and their strides ``[N]``, both float32.

    Points are grid-cell centres ``((x + 0.5) * s, (y + 0.5) * s)``: level-major, row-major within a level
    (y outer, x inner). ``N = sum((imgsz // s) ** 2)``.
    """
    points, stride_per_point = [], []
    for s in strides:
        n = imgsz // s
        ys, xs = np.meshgrid(np.arange(n, dtype=np.float32), np.arange(n, dtype=np.float32), indexing="ij")
        pts = np.stack([xs.ravel(), ys.ravel()], axis=1)
        points.append((pts + 0.5) * s)
        stride_per_point.append(np.full(n * n, s, dtype=np.float32))
    return np.concatenate(points).astype(np.float32), np.concatenate(stride_per_point)


def decode(boxes_ltrb: Any, points: Any) -> np.ndarray:
    """Distances (left, top, right, bottom) ``[..., N, 4]`` from anchor points ``[N, 2]`` -> xyxy ``[..., N, 4]``."""
    ltrb = to_numpy(boxes_ltrb).astype(np.float32, copy=False)
    pts = to_numpy(points).astype(np.float32, copy=False)
    if ltrb.shape[-1] != 4 or ltrb.shape[-2] != pts.shape[0]:
        raise ValueError(f"decode: boxes {ltrb.shape} do not match anchor points {pts.shape} (expected [..., N, 4])")
    return np.concatenate([pts - ltrb[..., :2], pts + ltrb[..., 2:]], axis=-1)


def box_iou_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box ``[4]`` against ``[M, 4]``."""
    ix1 = np.maximum(box[0], boxes[:, 0])
    iy1 = np.maximum(box[1], boxes[:, 1])
    ix2 = np.minimum(box[2], boxes[:, 2])
    iy2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def nms(boxes: Any, scores: Any, iou_thres: float) -> np.ndarray:
    """Greedy NMS on xyxy ``boxes [M, 4]``; returns kept indices (int64) sorted by decreasing score.

    A box is suppressed when its IoU with an already kept box is strictly greater than ``iou_thres``.
    """
    b = to_numpy(boxes).astype(np.float32, copy=False)
    s = to_numpy(scores).astype(np.float32, copy=False)
    order = np.argsort(-s, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[box_iou_one(b[i], b[rest]) <= iou_thres]
    return np.asarray(keep, dtype=np.int64)


def postprocess(
    boxes: Any,
    scores: Any,
    imgsz: int,
    conf_thres: float = 0.001,
    iou_thres: float = 0.6,
    max_det: int = 300,
    class_agnostic: bool = False,
) -> list[np.ndarray]:
    """Raw model outputs -> per-image detections ``[k, 6]`` float32 (x1, y1, x2, y2, score, cls).

    Coordinates are in letterboxed input pixels (use :func:`scale_to_original` afterwards).
    Each anchor contributes ONE candidate: its best class (no multi-label). Candidates with
    score > ``conf_thres`` are kept (at most ``MAX_NMS`` by score), then per-class NMS is done in a
    single pass by offsetting each box by ``cls * MAX_WH`` (unless ``class_agnostic``).
    """
    b = to_numpy(boxes).astype(np.float32, copy=False)
    s = to_numpy(scores).astype(np.float32, copy=False)
    if b.ndim != 3 or s.ndim != 3 or b.shape[-1] != 4 or b.shape[:2] != s.shape[:2]:
        raise ValueError(f"postprocess: expected boxes [B,N,4] and scores [B,N,nc], got {b.shape} and {s.shape}")
    points, _ = make_anchors(imgsz)
    if points.shape[0] != b.shape[1]:
        raise ValueError(f"postprocess: {b.shape[1]} predictions but imgsz {imgsz} gives {points.shape[0]} anchors")
    xyxy = decode(b, points)
    out: list[np.ndarray] = []
    for bi in range(b.shape[0]):
        cls = s[bi].argmax(axis=1)
        conf = s[bi][np.arange(s.shape[1]), cls]
        mask = conf > conf_thres
        bx, conf, cls = xyxy[bi][mask], conf[mask], cls[mask].astype(np.float32)
        if conf.size > MAX_NMS:
            top = np.argsort(-conf, kind="stable")[:MAX_NMS]
            bx, conf, cls = bx[top], conf[top], cls[top]
        offset = 0.0 if class_agnostic else cls[:, None] * MAX_WH
        keep = nms(bx + offset, conf, iou_thres)[:max_det]
        det = np.concatenate([bx[keep], conf[keep, None], cls[keep, None]], axis=1).astype(np.float32)
        out.append(det.reshape(-1, 6))
    return out


def scale_to_original(
    dets: Any,
    ratio: float | Sequence[float],
    pad: Sequence[float],
    orig_shape: Sequence[int],
) -> np.ndarray:
    """Map xyxy columns 0..3 of ``dets [k, >=4]`` from letterboxed pixels to original pixels and clip.

    ``ratio`` is the letterbox scale (a float, or (rx, ry)); ``pad`` is (padx, pady) added on the left/top;
    ``orig_shape`` is (h, w). Other columns are copied unchanged. Returns a new float32 array.
    """
    d = to_numpy(dets).astype(np.float32, copy=True)
    if d.size == 0:
        return np.zeros((0, d.shape[1] if d.ndim == 2 else 6), dtype=np.float32)
    if d.ndim != 2 or d.shape[1] < 4:
        raise ValueError(f"scale_to_original: expected dets [k, >=4], got shape {d.shape}")
    rx, ry = (float(ratio), float(ratio)) if np.isscalar(ratio) else (float(ratio[0]), float(ratio[1]))
    if rx <= 0 or ry <= 0:
        raise ValueError(f"scale_to_original: ratio must be > 0, got {ratio}")
    h, w = int(orig_shape[0]), int(orig_shape[1])
    d[:, [0, 2]] = np.clip((d[:, [0, 2]] - float(pad[0])) / rx, 0, w)
    d[:, [1, 3]] = np.clip((d[:, [1, 3]] - float(pad[1])) / ry, 0, h)
    return d
