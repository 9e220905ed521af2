"""For tests that compare two inference paths: a confidence threshold chosen from the model's own scores, and
perturbed copies of a path's detections that the comparison must reject.

A tiny training ends differently on an Intel and an AMD CPU (their vectorised kernels sum in another order), so
a fixed threshold such as 0.25 can leave an image with no detection on one machine and several on another: a
comparison of two paths then has nothing to compare, or fails for a reason that is not the code under test.
`conf_below_top` places the threshold in the widest gap between the model's own scores just below each image's
k-th highest score, so every image keeps at least k candidates (NMS always keeps the top one) and no score lies
within `margin` of the threshold, where rounding between two paths could flip it. `assert_rejects_perturbed`
shows that a comparison which passed still has teeth on the same data: a moved box, a changed score or class, a
dropped or an extra detection each make it fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np


def conf_below_top(scores: Iterable[np.ndarray], k: int = 1, margin: float = 1e-4, window: int = 64) -> float:
    """Threshold below the k-th highest score of every image, at least `margin` from every score.

    `scores`: one array per image (any shape, e.g. [anchors, classes]); every value counts as a candidate. Among
    the `window` highest distinct scores at or below the lowest k-th-highest score of all images, it returns the
    midpoint of the widest gap between neighbours (0 closes the last gap).
    """
    per_image = [np.sort(np.asarray(s, np.float64).ravel())[::-1] for s in scores]
    if not per_image or min(len(s) for s in per_image) < k:
        raise ValueError(f"conf_below_top: every image needs at least k={k} scores")
    ceiling = min(float(s[k - 1]) for s in per_image)
    values = np.unique(np.concatenate(per_image))[::-1]  # distinct, highest first
    below = values[values <= ceiling]
    below = below[:window] if len(below) > window else np.append(below, 0.0)  # 0 closes the last gap
    gaps = below[:-1] - below[1:]
    if not len(gaps) or gaps.max() < 2 * margin:
        raise AssertionError(f"conf_below_top: no gap of {2 * margin:g} between the {len(below)} highest scores "
                             f"at or below {ceiling:.6f}: the scores are too dense to place a threshold safely")
    i = int(np.argmax(gaps))
    return float((below[i] + below[i + 1]) / 2)


def perturbations(rows: np.ndarray, box: float | None, score: float) -> dict[str, np.ndarray]:
    """Copies of detections `rows` [k, 6] (x1 y1 x2 y2 score cls, highest score first), each with one real
    mismatch in its first (highest-scoring) detection. `box`: how far x1 and x2 move (None: by the box's width,
    so it no longer overlaps itself); `score`: how much its score changes."""
    if len(rows) < 1:
        raise ValueError("perturbations: no detection to perturb")
    first = rows[0]
    shift = box if box is not None else float(first[2] - first[0])
    moved, rescored, relabelled = rows.copy(), rows.copy(), rows.copy()
    moved[0, [0, 2]] += shift
    rescored[0, 4] += score
    relabelled[0, 5] = first[5] + 1
    extra = first.copy()
    extra[[0, 2]] += 2 * float(first[2] - first[0]) + 1  # disjoint from every box of its class near it
    return {"box moved": moved, "score changed": rescored, "class changed": relabelled,
            "detection dropped": rows[1:], "detection added": np.concatenate([rows, extra[None]])}


def assert_rejects_perturbed(check: Callable[[np.ndarray], object], rows: np.ndarray, box: float | None,
                             score: float, kinds: Iterable[str] | None = None) -> None:
    """`check(rows)` passed; each perturbation of `rows` (all, or those named in `kinds`) must make it raise
    AssertionError, else this raises naming the perturbation the comparison let through."""
    cases = perturbations(rows, box, score)
    for kind in kinds if kinds is not None else cases:
        try:
            check(cases[kind])
        except AssertionError:
            continue
        raise AssertionError(f"the comparison accepted a perturbed output ({kind}): it cannot catch a real mismatch")
