"""Mosaic: four images around a random centre of a 2S canvas (cropped back to S by the random affine)."""

from __future__ import annotations

import numpy as np

from pipeline.data.augment import clip_filter
from pipeline.data.letterbox import PAD_VALUE


def mosaic4(images: list[np.ndarray], targets: list[np.ndarray], imgsz: int,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Place 4 uint8 HWC images (long side <= imgsz) in the quadrants around (xc, yc) ~ U(S/2, 3S/2).

    Returns the [2S, 2S, 3] canvas and its (cls, x1, y1, x2, y2) targets, clipped to each tile.
    """
    if len(images) != 4 or len(targets) != 4:
        raise ValueError(f"mosaic4: expected 4 images and 4 target arrays, got {len(images)} and {len(targets)}")
    s = imgsz
    canvas = np.full((2 * s, 2 * s, 3), PAD_VALUE, dtype=np.uint8)
    xc, yc = (int(v) for v in rng.uniform(s / 2, 3 * s / 2, 2))
    out = []
    for i, (img, t) in enumerate(zip(images, targets)):
        h, w = img.shape[:2]
        if i == 0:  # top-left
            x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
            x1b, y1b, x2b, y2b = w - (x2a - x1a), h - (y2a - y1a), w, h
        elif i == 1:  # top-right
            x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, 2 * s), yc
            x1b, y1b, x2b, y2b = 0, h - (y2a - y1a), min(w, x2a - x1a), h
        elif i == 2:  # bottom-left
            x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(2 * s, yc + h)
            x1b, y1b, x2b, y2b = w - (x2a - x1a), 0, w, min(y2a - y1a, h)
        else:  # bottom-right
            x1a, y1a, x2a, y2a = xc, yc, min(xc + w, 2 * s), min(2 * s, yc + h)
            x1b, y1b, x2b, y2b = 0, 0, min(w, x2a - x1a), min(y2a - y1a, h)
        canvas[y1a:y2a, x1a:x2a] = img[y1b:y2b, x1b:x2b]
        tile = t.copy()
        tile[:, [1, 3]] += x1a - x1b
        tile[:, [2, 4]] += y1a - y1b
        # clip to this tile's region: shift into tile coordinates, clip, shift back
        tile[:, [1, 3]] -= x1a
        tile[:, [2, 4]] -= y1a
        tile = clip_filter(tile, x2a - x1a, y2a - y1a)
        tile[:, [1, 3]] += x1a
        tile[:, [2, 4]] += y1a
        out.append(tile)
    return canvas, np.concatenate(out).astype(np.float32).reshape(-1, 5)
