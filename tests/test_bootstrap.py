"""Bootstrap intervals of mAP: the weighted re-accumulation equals pycocotools exactly, and the interval is
reproducible and shrinks with more images."""

import numpy as np
import pytest

from pipeline.evaluate.bootstrap import class_matches, map_for_weights
from pipeline.evaluate.coco import build_coco_dets, build_coco_gt, coco_eval, run_cocoeval


def fake_eval(n_img: int, nc: int = 3, seed: int = 0, noise: float = 6.0):
    """Ground truth and noisy detections (some missed, some spurious) on n_img 200x200 images."""
    rng = np.random.default_rng(seed)
    gts, dets = [], []
    for _ in range(n_img):
        k = int(rng.integers(0, 6))
        xy = rng.uniform(0, 150, (k, 2))
        wh = rng.uniform(10, 50, (k, 2))
        boxes = np.concatenate([xy, xy + wh], 1)
        cls = rng.integers(0, nc, k)
        gts.append((boxes, cls, (200, 200)))
        keep = rng.random(k) < 0.8
        found = boxes[keep] + rng.normal(0, noise, (int(keep.sum()), 4))
        spur_xy = rng.uniform(0, 150, (int(rng.integers(0, 4)), 2))
        spur = np.concatenate([spur_xy, spur_xy + 30], 1)
        b = np.concatenate([found, spur])
        c = np.concatenate([np.where(rng.random(int(keep.sum())) < 0.9, cls[keep], (cls[keep] + 1) % nc),
                            rng.integers(0, nc, len(spur))])
        s = rng.uniform(0.05, 1.0, len(b))
        dets.append(np.concatenate([b, s[:, None], c[:, None]], 1).astype(np.float32))
    return gts, dets, nc


def evaluated(gts, dets, nc):
    names = [str(k) for k in range(nc)]
    return run_cocoeval(build_coco_gt(gts, nc, names), build_coco_dets(dets))


def test_unit_weights_reproduce_pycocotools_exactly():
    gts, dets, nc = fake_eval(40)
    ev = evaluated(gts, dets, nc)
    p = ev.params
    m50, m = map_for_weights(class_matches(ev), np.ones((1, len(gts))), np.asarray(p.recThrs),
                             int(np.argmin(np.abs(p.iouThrs - 0.5))))
    ref = coco_eval(gts, dets, nc)
    assert m50[0] == pytest.approx(ref["map50"], abs=1e-12) and m[0] == pytest.approx(ref["map"], abs=1e-12)
    assert 0.1 < ref["map50"] < 0.95  # a case where the curves matter


def test_integer_weights_equal_duplicated_images():
    gts, dets, nc = fake_eval(12, seed=3)
    weights = np.random.default_rng(1).integers(0, 3, 12)
    weights[0] = 2  # at least one duplicated image
    dup_gts = [g for g, w in zip(gts, weights) for _ in range(w)]
    dup_dets = [d for d, w in zip(dets, weights) for _ in range(w)]
    ref = coco_eval(dup_gts, dup_dets, nc)
    ev = evaluated(gts, dets, nc)
    p = ev.params
    m50, m = map_for_weights(class_matches(ev), weights[None].astype(float), np.asarray(p.recThrs),
                             int(np.argmin(np.abs(p.iouThrs - 0.5))))
    # ties between copies of one image keep COCO's order, so the weighted sum is the duplicated evaluation
    assert m50[0] == pytest.approx(ref["map50"], abs=1e-9) and m[0] == pytest.approx(ref["map"], abs=1e-9)


def test_interval_is_reproducible_contains_the_estimate_and_narrows_with_more_images():
    small = coco_eval(*fake_eval(30)[:2], 3, bootstrap=300, bootstrap_seed=7)
    again = coco_eval(*fake_eval(30)[:2], 3, bootstrap=300, bootstrap_seed=7)
    other_seed = coco_eval(*fake_eval(30)[:2], 3, bootstrap=300, bootstrap_seed=8)
    assert np.array_equal(small.pop("map50_samples"), again.pop("map50_samples")) and small == again
    assert small["map50_ci_low"] != other_seed["map50_ci_low"]
    for key in ("map50", "map"):
        assert small[f"{key}_ci_low"] < small[key] < small[f"{key}_ci_high"]
    large = coco_eval(*fake_eval(480)[:2], 3, bootstrap=300, bootstrap_seed=7)
    small_w = small["map50_ci_high"] - small["map50_ci_low"]
    large_w = large["map50_ci_high"] - large["map50_ci_low"]
    assert large_w < small_w / 2  # 16x the images: about a quarter of the width


def test_no_detections_give_zero_intervals():
    gts, _, nc = fake_eval(5)
    r = coco_eval(gts, [np.zeros((0, 6), np.float32)] * 5, nc, bootstrap=100)
    assert r["map50"] == 0 and r["map50_ci_low"] == r["map50_ci_high"] == 0
