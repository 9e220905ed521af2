"""The comparison helpers of tests/detection_checks.py: a threshold from a model's own scores, and perturbations."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.infer.postprocess import postprocess
from tests.detection_checks import assert_rejects_perturbed, conf_below_top, perturbations


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 3])
def test_threshold_keeps_k_scores_of_every_image_and_stays_clear_of_all(seed, k):
    rng = np.random.default_rng(seed)
    # images of very different confidence: a model that learned, one that did not, one in between
    scores = [rng.uniform(0, top, (84, 2)).astype(np.float32) for top in (0.97, 0.03, 0.4)]
    conf = conf_below_top(scores, k=k, margin=1e-5)
    for s in scores:
        assert (s > conf).sum() >= k
    assert np.abs(np.concatenate([s.ravel() for s in scores]) - conf).min() >= 1e-5


def test_every_image_keeps_a_detection_after_nms():
    rng = np.random.default_rng(0)
    n = 84  # anchors of a 64 px input at strides 8, 16, 32
    boxes = rng.uniform(1, 20, (3, n, 4)).astype(np.float32)
    scores = (rng.uniform(0, 1, (3, n, 2)) * np.array([0.9, 0.02, 0.3])[:, None, None]).astype(np.float32)
    conf = conf_below_top(scores)
    assert all(len(d) >= 1 for d in postprocess(boxes, scores, 64, conf_thres=conf, iou_thres=0.45))


def test_dense_scores_and_too_few_scores_are_refused():
    with pytest.raises(AssertionError, match="too dense"):
        conf_below_top([np.linspace(0.5, 0.5001, 100)], margin=1e-3, window=64)  # 64 scores 1e-6 apart
    assert conf_below_top([np.linspace(0.5, 0.5001, 50)], margin=1e-3) == pytest.approx(0.25)  # all, then 0
    with pytest.raises(ValueError, match="k=3"):
        conf_below_top([np.array([0.9, 0.1])], k=3)


def test_each_perturbation_is_a_real_mismatch_that_an_exact_check_rejects():
    rows = np.array([[10, 10, 20, 30, 0.9, 0], [40, 40, 50, 50, 0.6, 1]], np.float32)
    cases = perturbations(rows, box=1e-3, score=1e-3)
    assert set(cases) == {"box moved", "score changed", "class changed", "detection dropped", "detection added"}
    assert all(not (c.shape == rows.shape and np.array_equal(c, rows)) for c in cases.values())
    assert perturbations(rows, box=None, score=0.1)["box moved"][0, 0] == 20  # moved by its own width

    def exact(other):
        assert other.shape == rows.shape and np.array_equal(other, rows)

    assert_rejects_perturbed(exact, rows, box=1e-3, score=1e-3)
    with pytest.raises(AssertionError, match="box moved"):  # a check blind to boxes is caught out
        assert_rejects_perturbed(lambda other: np.testing.assert_array_equal(other[:, 4:], rows[:, 4:]), rows,
                                 box=1e-3, score=1e-3)
