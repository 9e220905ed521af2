"""95 % bootstrap intervals of COCO mAP50 and mAP50-95 over the val images.

pycocotools matches every detection once (`COCOeval.evaluate`); a bootstrap resample of the images only changes
how often each image counts. So each resample re-runs COCO's accumulation (precision at 101 recall points,
the precision envelope, the mean over classes) on the same matches with every detection and ground-truth box
weighted by its image's count in the resample: with all counts 1 this is exactly COCO's mAP, which the tests
check. Resamples are drawn from `numpy.random.default_rng(seed)`, so the interval is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pycocotools.cocoeval import COCOeval

LEVEL = 0.95
_CHUNK = 50  # resamples per vectorised step (memory: chunk x detections of a class)


@dataclass(frozen=True)
class ClassMatches:
    """One class's detections over all images, sorted by score as COCO sorts them."""

    det_image: np.ndarray  # [D] image position of each detection
    tp: np.ndarray  # [T, D] bool: matched (and not ignored) at each IoU threshold
    fp: np.ndarray  # [T, D] bool: unmatched and not ignored
    gt_per_image: np.ndarray  # [I] non-ignored ground-truth boxes of this class per image


def class_matches(ev: COCOeval, max_det: int = 100) -> list[ClassMatches]:
    """Per class (classes without ground truth left out, as COCO leaves them out of the mean), from an evaluated
    COCOeval, for area 'all' and `max_det` detections per image."""
    p = ev.params
    n_img, n_area = len(p.imgIds), len(p.areaRng)
    a = p.areaRngLbl.index("all")
    out = []
    for k in range(len(p.catIds)):
        entries = [(i, ev.evalImgs[k * n_area * n_img + a * n_img + i]) for i in range(n_img)]
        entries = [(i, e) for i, e in entries if e is not None]
        gt = np.zeros(n_img, dtype=np.float64)
        for i, e in entries:
            gt[i] = np.count_nonzero(np.asarray(e["gtIgnore"]) == 0)
        if not gt.any():
            continue
        n_thr = len(p.iouThrs)
        scores = np.concatenate([np.asarray(e["dtScores"][:max_det]) for _, e in entries] or [np.zeros(0)])
        image = np.concatenate([np.full(len(e["dtScores"][:max_det]), i) for i, e in entries] or [np.zeros(0)])
        matches = np.concatenate([e["dtMatches"][:, :max_det] for _, e in entries] or [np.zeros((n_thr, 0))], axis=1)
        ignore = np.concatenate([e["dtIgnore"][:, :max_det] for _, e in entries] or [np.zeros((n_thr, 0))], axis=1)
        order = np.argsort(-scores, kind="mergesort")  # COCO's order
        matched, ignored = matches[:, order] > 0, ignore[:, order] > 0
        out.append(ClassMatches(image[order].astype(np.int64), matched & ~ignored, ~matched & ~ignored, gt))
    return out


def weighted_ap(c: ClassMatches, weights: np.ndarray, rec_thrs: np.ndarray) -> np.ndarray:
    """AP [B, T] of one class for image weights [B, I]; NaN where a resample holds none of its ground truth.

    Only the true positives matter: recall rises at them only, so the first point reaching each recall threshold is
    one of them, and a false positive's precision never exceeds that of the true positive before it, so it never
    sets the envelope. The precision at each true positive needs the weighted count of every detection up to it
    (one cumulative sum over all detections), the rest runs over the true positives alone.
    """
    w_det = weights[:, c.det_image]  # [B, D]
    n_gt = weights @ c.gt_per_image  # [B]
    n_thr = c.tp.shape[0]
    ap = np.full((weights.shape[0], n_thr), np.nan)
    present = n_gt > 0
    if not present.any():
        return ap
    w_det, n_gt = w_det[present], n_gt[present]
    counted = np.cumsum(w_det, axis=1)  # every detection up to each position
    for j in range(n_thr):
        pos = np.flatnonzero(c.tp[j])
        if pos.size == 0:
            ap[present, j] = 0.0
            continue
        tp = np.cumsum(w_det[:, pos], axis=1)
        ignored = ~c.tp[j] & ~c.fp[j]
        seen = counted[:, pos] - (np.cumsum(w_det * ignored, axis=1)[:, pos] if ignored.any() else 0.0)
        precision = tp / (seen + np.spacing(1))  # tp / (tp + fp)
        recall = tp / n_gt[:, None]
        envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]  # COCO's interpolated precision
        idx = np.stack([np.searchsorted(row, rec_thrs, side="left") for row in recall])
        k = pos.size
        q = np.where(idx < k, np.take_along_axis(envelope, np.minimum(idx, k - 1), axis=1), 0.0)
        ap[present, j] = q.mean(axis=1)
    return ap


def map_for_weights(classes: list[ClassMatches], weights: np.ndarray, rec_thrs: np.ndarray,
                    t50: int) -> tuple[np.ndarray, np.ndarray]:
    """(mAP50 [B], mAP50-95 [B]): means over the classes present in each resample."""
    aps = np.stack([weighted_ap(c, weights, rec_thrs) for c in classes], axis=1)  # [B, K, T]
    with np.errstate(invalid="ignore"), np.testing.suppress_warnings() as sup:
        sup.filter(RuntimeWarning)
        return np.nanmean(aps[:, :, t50], axis=1), np.nanmean(aps.mean(axis=2), axis=1)


def bootstrap_intervals(ev: COCOeval, resamples: int, seed: int, level: float = LEVEL) -> dict:
    """Percentile intervals of mAP50 and mAP50-95 over `resamples` resamples of the images (with replacement).

    Returns {map50_ci_low, map50_ci_high, map50_se, map_ci_low, map_ci_high, map_se} (se: the bootstrap
    standard deviation) and `map50_samples` (the resampled mAP50s). The resamples depend on (seed, number of
    images) only, so two models evaluated on the same images with the same seed get paired samples: their
    difference has an interval of its own (`paired_interval`)."""
    p = ev.params
    classes = class_matches(ev, max(p.maxDets))
    t50 = int(np.argmin(np.abs(p.iouThrs - 0.5)))
    n_img = len(p.imgIds)
    if not classes:
        return {**{f"{m}_{k}": 0.0 for m in ("map50", "map") for k in ("ci_low", "ci_high", "se")},
                "map50_samples": np.zeros(resamples)}
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_img, np.full(n_img, 1.0 / n_img), size=resamples).astype(np.float64)
    m50, m = [], []
    for start in range(0, resamples, _CHUNK):
        a, b = map_for_weights(classes, counts[start:start + _CHUNK], np.asarray(p.recThrs), t50)
        m50.append(a)
        m.append(b)
    out: dict = {"map50_samples": np.nan_to_num(np.concatenate(m50))}
    for name, values in (("map50", np.concatenate(m50)), ("map", np.concatenate(m))):
        lo, hi = percentile_interval(values[np.isfinite(values)], level)
        out.update({f"{name}_ci_low": lo, f"{name}_ci_high": hi, f"{name}_se": float(np.nanstd(values))})
    return out


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return float(lo), float(hi)


def paired_interval(a: np.ndarray, b: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Interval of a - b from paired resamples (the same images drawn for both)."""
    if a.shape != b.shape:
        raise ValueError(f"paired_interval: {a.shape} and {b.shape} samples are not paired")
    return percentile_interval(a - b, level)
