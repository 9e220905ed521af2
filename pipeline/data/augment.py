"""Training augmentation on uint8 HWC images with (cls, x1, y1, x2, y2) pixel targets. numpy/PIL only."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from pipeline.config.augment import AugmentParams
from pipeline.data.letterbox import PAD_VALUE

MIN_SIDE = 2.0  # px: boxes thinner than this after a transform are dropped
MIN_VISIBLE = 0.2  # boxes keeping less than this fraction of their area are dropped



def box_candidates(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Mask of boxes to keep: sides >= MIN_SIDE and >= MIN_VISIBLE of the (transformed, unclipped) area left."""
    wa, ha = after[:, 2] - after[:, 0], after[:, 3] - after[:, 1]
    area_b = (before[:, 2] - before[:, 0]) * (before[:, 3] - before[:, 1])
    return (wa >= MIN_SIDE) & (ha >= MIN_SIDE) & (wa * ha >= MIN_VISIBLE * np.maximum(area_b, 1e-9))


def clip_filter(targets: np.ndarray, w: int, h: int) -> np.ndarray:
    """Clip boxes to a w x h image and drop tiny or mostly cut-away ones."""
    out = targets.copy()
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, w)
    out[:, [2, 4]] = out[:, [2, 4]].clip(0, h)
    return out[box_candidates(targets[:, 1:5], out[:, 1:5])]


def random_affine(img: np.ndarray, targets: np.ndarray, out_size: int, p: AugmentParams,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Scale by U(1-scale, 1+scale) about the image centre, place that centre at out_size * U(0.5 +- translate)."""
    h, w = img.shape[:2]
    s = float(rng.uniform(1 - p.scale, 1 + p.scale))
    tx = float(rng.uniform(0.5 - p.translate, 0.5 + p.translate)) * out_size
    ty = float(rng.uniform(0.5 - p.translate, 0.5 + p.translate)) * out_size
    # PIL wants the inverse map: output (u, v) -> input ((u - tx) / s + w / 2, (v - ty) / s + h / 2)
    coeffs = (1 / s, 0.0, w / 2 - tx / s, 0.0, 1 / s, h / 2 - ty / s)
    out = Image.fromarray(img).transform((out_size, out_size), Image.Transform.AFFINE, coeffs,
                                         Image.Resampling.BILINEAR, fillcolor=(PAD_VALUE,) * 3)
    t = targets.copy()
    t[:, [1, 3]] = (t[:, [1, 3]] - w / 2) * s + tx
    t[:, [2, 4]] = (t[:, [2, 4]] - h / 2) * s + ty
    return np.asarray(out), clip_filter(t, out_size, out_size)


def augment_hsv(img: np.ndarray, p: AugmentParams, rng: np.random.Generator) -> np.ndarray:
    """Random hue/saturation/value gains via lookup tables in PIL's 8-bit HSV space."""
    if p.hsv_h == 0 and p.hsv_s == 0 and p.hsv_v == 0:
        return img
    gh, gs, gv = rng.uniform(-1, 1, 3) * (p.hsv_h, p.hsv_s, p.hsv_v) + 1
    x = np.arange(256, dtype=np.float32)
    lut_h = ((x * gh) % 256).astype(np.uint8)
    lut_s = np.clip(x * gs, 0, 255).astype(np.uint8)
    lut_v = np.clip(x * gv, 0, 255).astype(np.uint8)
    hsv = np.asarray(Image.fromarray(img).convert("HSV"))
    hsv = np.stack([lut_h[hsv[..., 0]], lut_s[hsv[..., 1]], lut_v[hsv[..., 2]]], -1)
    return np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))


def hflip(img: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror left-right."""
    w = img.shape[1]
    t = targets.copy()
    t[:, 1], t[:, 3] = w - targets[:, 3], w - targets[:, 1]
    return np.ascontiguousarray(img[:, ::-1]), t


def _overlap(box: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intersection over each existing box's area, and over ``box``'s area."""
    iw = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    ih = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    inter = iw.clip(0) * ih.clip(0)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area, 1e-9), inter / max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)


def copy_paste(img: np.ndarray, targets: np.ndarray, donor: np.ndarray, donor_targets: np.ndarray,
               rng: np.random.Generator, max_objects: int = 3,
               max_overlap: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Paste up to ``max_objects`` box crops from ``donor`` at free spots (overlap < ``max_overlap`` both ways)."""
    h, w = img.shape[:2]
    ok = [i for i, t in enumerate(donor_targets)
          if 4 <= t[3] - t[1] < w and 4 <= t[4] - t[2] < h]
    if not ok:
        return img, targets
    img, out = img.copy(), [targets]
    for i in rng.permutation(ok)[: int(rng.integers(1, max_objects + 1))]:
        cls, x1, y1, x2, y2 = donor_targets[i]
        ix1, iy1, ix2, iy2 = int(x1), int(y1), int(math.ceil(x2)), int(math.ceil(y2))
        crop = donor[iy1:iy2, ix1:ix2]
        ch, cw = crop.shape[:2]
        if ch < 2 or cw < 2 or ch >= h or cw >= w:
            continue
        boxes = np.concatenate(out)[:, 1:5]
        for _ in range(10):
            px, py = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            new = np.array([px, py, px + cw, py + ch], dtype=np.float32)
            if len(boxes) == 0 or max(a.max() for a in _overlap(new, boxes)) < max_overlap:
                flipped = bool(rng.random() < 0.5)
                img[py : py + ch, px : px + cw] = crop[:, ::-1] if flipped else crop
                ox1 = (ix2 - x2) if flipped else (x1 - ix1)  # tight box inside the integer crop
                oy1 = y1 - iy1
                out.append(np.array([[cls, px + ox1, py + oy1, px + ox1 + x2 - x1, py + oy1 + y2 - y1]], np.float32))
                break
    return img, np.concatenate(out).astype(np.float32)


def mixup(img: np.ndarray, targets: np.ndarray, img2: np.ndarray, targets2: np.ndarray,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blend two same-size images with ratio ~ Beta(32, 32); keep both sets of boxes."""
    r = float(rng.beta(32.0, 32.0))
    out = (img.astype(np.float32) * r + img2.astype(np.float32) * (1 - r)).round().astype(np.uint8)
    return out, np.concatenate([targets, targets2]).astype(np.float32)
