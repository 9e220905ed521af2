"""The embedded default dataset: shapes told apart by outline only, on cluttered textured scenes.

Deterministic from the seed (image ``i`` of a split draws from ``default_rng([seed, split, i])``) and written
in the YOLO layout, so it goes through the same loader as user data.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipeline.data.data_yaml import dump_data_yaml, load_data_yaml
from pipeline.data.dataset import ground_truth
from pipeline.data.synth_draw import CLASS_NAMES, background, draw_clutter, random_color, shape_polygon, texture
from pipeline.io.atomic import atomic_dir

MIN_SIZE, MAX_SIZE = 6.0, 80.0  # object diameter range in px at imgsz 256 (log-uniform: many small)
MAX_OCCLUDED = 0.6  # objects hidden more than this are not labelled
SUPERSAMPLE = 3  # masks are drawn 3x larger and averaged: anti-aliased edges
SIZE_BINS = (8, 16, 32, 64, 128)


def _object_mask(poly: np.ndarray, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    """Anti-aliased coverage [h, w] in [0, 1] of polygon ``poly`` (image px) inside the patch at (x0, y0)."""
    m = Image.new("L", (w * SUPERSAMPLE, h * SUPERSAMPLE), 0)
    pts = [((x - x0) * SUPERSAMPLE, (y - y0) * SUPERSAMPLE) for x, y in poly]
    ImageDraw.Draw(m).polygon(pts, fill=255)
    return np.asarray(m.resize((w, h), Image.Resampling.BOX), np.float32) / 255.0


Box = tuple[int, float, float, float, float]


def render_scene(rng: np.random.Generator, imgsz: int = 256, min_size: float | None = None,
                 max_size: float | None = None, max_clutter: int = 9,
                 max_objects: int = 12) -> tuple[Image.Image, list[Box]]:
    """One image and its labels (cls, x1, y1, x2, y2) in pixels (visible extent of each kept object).

    Object diameters are drawn log-uniform from [min_size, max_size] px of this image (default: the 6-80 px
    range of a 256 px image, scaled to ``imgsz``). ``max_clutter`` bounds the non-class distractors drawn under
    the objects (2 to ``max_clutter``; 0: none, and none over them either); ``max_objects`` the shapes drawn
    (2 to ``max_objects``; some end up hidden by later ones and are not labelled).
    """
    canvas = Image.fromarray(background(rng, imgsz).astype(np.uint8))
    draw_clutter(canvas, rng, int(rng.integers(min(2, max_clutter), max_clutter + 1)))
    img = np.asarray(canvas, np.float32).copy()
    owner = np.full((imgsz, imgsz), -1, dtype=np.int16)
    objs: list[tuple[int, int, int, int, int, int]] = []  # cls, x0, y0, w, h, full area
    k = 256.0 / imgsz
    lo = min_size if min_size is not None else MIN_SIZE / k
    hi = max_size if max_size is not None else MAX_SIZE / k
    if not 0 < lo <= hi <= imgsz / 2:
        raise ValueError(f"object sizes must satisfy 0 < min_size <= max_size <= imgsz/2, got {lo}, {hi} at {imgsz}")
    for oid in range(int(rng.integers(min(2, max_objects), max_objects + 1))):
        cls = int(rng.integers(len(CLASS_NAMES)))
        r = math.exp(rng.uniform(math.log(lo), math.log(hi))) / 2
        cx, cy = rng.uniform(r + 1, imgsz - r - 1, 2)
        ang = rng.uniform(0, 2 * math.pi)
        rot = np.array([[math.cos(ang), math.sin(ang)], [-math.sin(ang), math.cos(ang)]])
        poly = shape_polygon(cls, rng) @ rot * r + (cx, cy)
        x0, y0 = (int(math.floor(v)) for v in poly.min(0))
        x1, y1 = (int(math.ceil(v)) + 1 for v in poly.max(0))
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, imgsz), min(y1, imgsz)
        alpha = _object_mask(poly, x0, y0, x1 - x0, y1 - y0)[..., None]
        patch = img[y0:y1, x0:x1]
        bg_mean = patch.reshape(-1, 3).mean(0)
        color = random_color(rng)
        for _ in range(4):  # keep the object visible against its surroundings
            if np.linalg.norm(color - bg_mean) >= 70:
                break
            color = random_color(rng)
        fill = texture(rng, y1 - y0, x1 - x0, color)
        img[y0:y1, x0:x1] = patch * (1 - alpha) + fill * alpha
        solid = alpha[..., 0] >= 0.5
        owner[y0:y1, x0:x1][solid] = oid
        objs.append((cls, x0, y0, x1 - x0, y1 - y0, int(solid.sum())))
    labels = []
    for oid, (cls, x0, y0, w, h, area) in enumerate(objs):
        ys, xs = np.nonzero(owner[y0 : y0 + h, x0 : x0 + w] == oid)
        if area == 0 or len(xs) < (1 - MAX_OCCLUDED) * area:
            continue
        bx0, by0, bx1, by1 = x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1
        if bx1 - bx0 >= 2 and by1 - by0 >= 2:
            labels.append((cls, float(bx0), float(by0), float(bx1), float(by1)))
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    if rng.random() < 0.3:  # thin clutter over the objects
        extra = int(rng.integers(1, 3))
        draw_clutter(out, rng, extra if max_clutter else 0)
    if rng.random() < 0.3:
        out = out.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.4, 1.2))))
    if rng.random() < 0.35:
        noise = rng.standard_normal((imgsz, imgsz, 3), np.float32) * rng.uniform(2, 8)
        noisy = np.asarray(out, np.float32) + noise
        out = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    return out, labels


def _label_text(labels: list[Box], imgsz: int) -> str:
    lines = [f"{c} {(x0 + x1) / 2 / imgsz:.6f} {(y0 + y1) / 2 / imgsz:.6f} {(x1 - x0) / imgsz:.6f} "
             f"{(y1 - y0) / imgsz:.6f}" for c, x0, y0, x1, y1 in labels]
    return "".join(line + "\n" for line in lines)


def generate_dataset(out_dir: str | Path, n_train: int = 500, n_val: int = 100, imgsz: int = 256,
                     seed: int = 0, min_size: float | None = None, max_size: float | None = None,
                     max_clutter: int = 9, max_objects: int = 12) -> Path:
    """Write the synthetic dataset (PNG, YOLO layout, ``data.yaml`` with ``path: .``) and return the yaml path.

    The folder appears atomically (built beside ``out_dir`` and renamed); the same arguments give
    byte-identical files.
    """
    if n_train < 1 or n_val < 1 or imgsz < 32:
        raise ValueError("generate_dataset: expected n_train, n_val >= 1 and imgsz >= 32, "
                         f"got {n_train}, {n_val}, {imgsz}")
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        for split_id, (split, n) in enumerate((("train", n_train), ("val", n_val))):
            (tmp / "images" / split).mkdir(parents=True)
            (tmp / "labels" / split).mkdir(parents=True)
            for i in range(n):
                img, labels = render_scene(np.random.default_rng([seed, split_id, i]), imgsz, min_size, max_size,
                                           max_clutter, max_objects)
                buf = io.BytesIO()
                img.save(buf, format="PNG", compress_level=1)
                (tmp / "images" / split / f"{i:05d}.png").write_bytes(buf.getvalue())
                (tmp / "labels" / split / f"{i:05d}.txt").write_text(_label_text(labels, imgsz))
        (tmp / "data.yaml").write_text(dump_data_yaml(len(CLASS_NAMES), CLASS_NAMES))
    return out_dir / "data.yaml"


def _size_bin(side: float) -> str:
    edges = (0, *SIZE_BINS)
    for lo, hi in zip(edges, edges[1:]):
        if side < hi:
            return f"<{hi}" if lo == 0 else f"{lo}-{hi}"
    return f">={SIZE_BINS[-1]}"


def describe_dataset(data_yaml: str | Path) -> dict:
    """Data report: images, empty images, boxes per class and a histogram of sqrt(box area) in original px."""
    cfg = load_data_yaml(data_yaml)
    bins = [_size_bin(v) for v in (1, *SIZE_BINS)]
    report: dict = {"nc": cfg.nc, "names": list(cfg.names), "splits": {}}
    for split in ("train", "val"):
        gts = ground_truth(cfg.split(split), cfg.nc)
        per_class = dict.fromkeys(cfg.names, 0)
        hist = dict.fromkeys(bins, 0)
        for gt in gts:
            for c, (x0, y0, x1, y1) in zip(gt.classes, gt.boxes):
                per_class[cfg.names[int(c)]] += 1
                hist[_size_bin(math.sqrt(max(float((x1 - x0) * (y1 - y0)), 0.0)))] += 1
        report["splits"][split] = {
            "images": len(gts),
            "empty_images": sum(len(g.classes) == 0 for g in gts),
            "boxes": sum(per_class.values()),
            "boxes_per_class": per_class,
            "box_size_hist": hist,
        }
    return report
