"""Prediction on user images with any backend: same letterbox pre-processing and post-processing as evaluation."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.data.labels import IMAGE_SUFFIXES, load_image
from pipeline.data.letterbox import letterbox
from pipeline.infer.backends import Backend
from pipeline.infer.postprocess import postprocess, scale_to_original

IMG_EXTS = set(IMAGE_SUFFIXES)
PALETTE = [(255, 56, 56), (56, 56, 255), (56, 200, 56), (255, 157, 151), (255, 112, 31), (0, 194, 255),
           (255, 178, 29), (207, 210, 49), (72, 249, 10), (146, 204, 23), (61, 219, 134), (26, 147, 52)]


@dataclass
class Detections:
    """Detections for one image, in ORIGINAL image pixels."""

    boxes: np.ndarray  # [k, 4] float32 xyxy
    scores: np.ndarray  # [k] float32
    classes: np.ndarray  # [k] int64
    orig_img: np.ndarray  # [H, W, 3] uint8 RGB
    names: list[str] = field(default_factory=list)
    path: str | None = None

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def labels(self) -> list[str]:
        """Class name of each detection (the class id as text when no name is known)."""
        return [self.names[c] if 0 <= c < len(self.names) else str(c) for c in self.classes.tolist()]

    def to_array(self) -> np.ndarray:
        """``[k, 6]`` float32 (x1, y1, x2, y2, score, cls) as in CONTRACTS.md."""
        return np.concatenate([self.boxes, self.scores[:, None], self.classes[:, None].astype(np.float32)], 1)

    def plot(self, line_width: int = 2) -> Image.Image:
        """Return a copy of the original image with boxes and "name score" labels drawn."""
        im = Image.fromarray(self.orig_img).convert("RGB")
        draw = ImageDraw.Draw(im)
        font = ImageFont.load_default()
        for box, score, cls, label in zip(self.boxes.tolist(), self.scores.tolist(), self.classes.tolist(),
                                          self.labels):
            color = PALETTE[int(cls) % len(PALETTE)]
            draw.rectangle(box, outline=color, width=line_width)
            text = f"{label} {score:.2f}"
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            tw, th = right - left, bottom - top + 2
            x0 = box[0]
            y0 = box[1] - th if box[1] - th >= 0 else box[1]
            draw.rectangle([x0, y0, x0 + tw + 2, y0 + th], fill=color)
            draw.text((x0 + 1, y0 - top + 1), text, fill=(255, 255, 255), font=font)
        return im

    def save(self, path: str | Path) -> Path:
        """Write the plotted image atomically (temp file in the same folder, then ``os.replace``)."""
        path = Path(path)
        fmt = Image.registered_extensions().get(path.suffix.lower())
        if fmt is None:
            raise ValueError(f"{path}: unknown image extension {path.suffix!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.plot().save(tmp, format=fmt)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return path


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 HWC RGB, EXIF orientation applied (the data layer's loader)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    return load_image(path)


def _as_rgb_array(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"{what}: expected a uint8 HWC RGB array, got dtype {arr.dtype} shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _paths_from(src: str | Path) -> list[Path]:
    p = Path(src)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMG_EXTS)
        if not files:
            raise FileNotFoundError(f"no images ({', '.join(sorted(IMG_EXTS))}) in folder: {p}")
        return files
    if p.is_file():
        return [p]
    if any(ch in str(src) for ch in "*?["):
        files = sorted(Path(f) for f in glob.glob(str(src), recursive=True) if Path(f).suffix.lower() in IMG_EXTS)
        if not files:
            raise FileNotFoundError(f"no images match the pattern: {src}")
        return files
    raise FileNotFoundError(f"image not found: {p}")


def iter_images(images: Any) -> Iterator[tuple[str | None, Any]]:
    """Yield ``(path or None, loader)`` for every image in a path, folder, glob, PIL image, array or list.

    Paths are resolved (and missing ones reported) up-front; pixels are read lazily.
    """
    sources: list[tuple[str | None, Any]] = []

    def add(src: Any) -> None:
        if isinstance(src, (list, tuple)):
            for s in src:
                add(s)
        elif isinstance(src, Image.Image):
            sources.append((None, np.asarray(src.convert("RGB"))))
        elif isinstance(src, np.ndarray):
            sources.append((None, _as_rgb_array(src, "image array")))
        elif isinstance(src, (str, Path)):
            sources.extend((str(p), p) for p in _paths_from(src))
        else:
            raise ValueError(f"unsupported image source of type {type(src).__name__}")

    add(images)
    yield from sources


def preprocess(img: np.ndarray, imgsz: int) -> tuple[np.ndarray, float, tuple[float, float]]:
    """uint8 HWC RGB -> float32 CHW [0, 1] letterboxed to ``imgsz`` (same helper as training/eval)."""
    lb, ratio, pad = letterbox(img, imgsz)
    chw = np.ascontiguousarray(np.asarray(lb).transpose(2, 0, 1), dtype=np.float32) / 255.0
    return chw, ratio, (float(pad[0]), float(pad[1]))


def predict(
    backend: Backend,
    images: Any,
    conf_thres: float = 0.25,
    iou_thres: float = 0.45,
    names: Sequence[str] | None = None,
    imgsz: int | None = None,
    max_det: int = 300,
    batch_size: int = 1,
) -> list[Detections]:
    """Detect objects in ``images`` (path, folder, glob, PIL image, HWC uint8 RGB array, or a list of those)."""
    size = imgsz or backend.imgsz
    if not size:
        raise ValueError(f"predict: backend {backend.name} does not know its input size; pass imgsz=")
    names = list(names) if names is not None else list(getattr(backend, "names", None) or [])
    sources = list(iter_images(images))
    results: list[Detections] = []
    for start in range(0, len(sources), batch_size):
        chunk = sources[start:start + batch_size]
        origs = [read_image(src) if path is not None else src for path, src in chunk]
        prepped = [preprocess(im, size) for im in origs]
        boxes, scores = backend(np.stack([p[0] for p in prepped]))
        dets = postprocess(boxes, scores, size, conf_thres=conf_thres, iou_thres=iou_thres, max_det=max_det)
        for (path, _), im, (_, ratio, pad), det in zip(chunk, origs, prepped, dets):
            d = scale_to_original(det, ratio, pad, im.shape[:2])
            results.append(Detections(boxes=d[:, :4].copy(), scores=d[:, 4].copy(),
                                      classes=d[:, 5].astype(np.int64), orig_img=im, names=names, path=path))
    return results
