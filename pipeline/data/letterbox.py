"""Letterbox: resize keeping aspect, then centre on a square grey (114) canvas. Shared by train and inference."""

from __future__ import annotations

import numpy as np
from PIL import Image

PAD_VALUE = 114


def resize_keep_aspect(img: np.ndarray, imgsz: int) -> tuple[np.ndarray, float]:
    """Resize uint8 HWC ``img`` so its long side is ``imgsz``. Returns (image, ratio)."""
    h, w = img.shape[:2]
    ratio = min(imgsz / h, imgsz / w)
    nw, nh = max(1, round(w * ratio)), max(1, round(h * ratio))
    if (nw, nh) != (w, h):
        img = np.asarray(Image.fromarray(img).resize((nw, nh), Image.Resampling.BILINEAR))
    return img, ratio


def pad_to_square(img: np.ndarray, imgsz: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Centre ``img`` (at most ``imgsz`` per side) on an ``imgsz`` grey canvas. Returns (image, (padx, pady))."""
    h, w = img.shape[:2]
    if h > imgsz or w > imgsz:
        raise ValueError(f"pad_to_square: image {w}x{h} is larger than {imgsz}")
    padx, pady = (imgsz - w) // 2, (imgsz - h) // 2
    out = np.full((imgsz, imgsz, 3), PAD_VALUE, dtype=np.uint8)
    out[pady : pady + h, padx : padx + w] = img
    return out, (padx, pady)


def letterbox(img: np.ndarray, imgsz: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """uint8 HWC RGB -> (uint8 [imgsz, imgsz, 3], ratio, (padx, pady)).

    A point (x, y) in the original image maps to (x * ratio + padx, y * ratio + pady).
    """
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"letterbox: expected uint8 HWC RGB, got {img.dtype} {img.shape}")
    resized, ratio = resize_keep_aspect(img, imgsz)
    out, pad = pad_to_square(resized, imgsz)
    return out, ratio, pad
