"""Import a COCO-json detection dataset into the YOLO layout this package reads."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.data_yaml import dump_data_yaml
from pipeline.data.errors import DatasetError
from pipeline.data.labels import image_size
from pipeline.io.atomic import atomic_dir

BOX_TOLERANCE = 1.0  # px a COCO bbox may overshoot the image (rounding in exporters); clipped on import


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: COCO annotation file not found")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:  # RecursionError: nested too deep
        raise DatasetError(path, f"not valid JSON ({e})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
            raise DatasetError(path, f"missing list '{key}'; expected a COCO detection file")
    return doc


def _categories(path: Path, doc: dict[str, Any]) -> tuple[dict[int, int], list[str]]:
    try:
        cats = sorted((int(c["id"]), str(c["name"])) for c in doc["categories"])
    except (KeyError, TypeError, ValueError, OverflowError):
        raise DatasetError(path, "every category needs an integer 'id' and a 'name'") from None
    if not cats or len({i for i, _ in cats}) != len(cats):
        raise DatasetError(path, f"expected non-empty categories with unique ids, got {[i for i, _ in cats]}")
    return {cid: k for k, (cid, _) in enumerate(cats)}, [n for _, n in cats]


def _convert(path: Path, doc: dict[str, Any], images_dir: Path, cat_map: dict[int, int]) -> dict[str, tuple[Path, str]]:
    """-> {output file name: (source image, YOLO label text)} after validating every image and annotation."""
    images: dict[int, dict[str, Any]] = {}
    for im in doc["images"]:
        try:
            iid, name, w, h = int(im["id"]), str(im["file_name"]), float(im["width"]), float(im["height"])
        except (KeyError, TypeError, ValueError, OverflowError):
            raise DatasetError(path, f"image entry {str(im)[:200]}: expected id, file_name, width, height") from None
        if not (math.isfinite(w) and math.isfinite(h) and w >= 1 and h >= 1 and w == int(w) and h == int(h)):
            raise DatasetError(path, f"image id {iid}: width, height {im['width']!r}, {im['height']!r}; expected "
                               "positive integers")
        src = images_dir / name
        if images_dir.resolve() not in src.resolve().parents:
            raise DatasetError(path, f"image id {iid}: file_name {name!r} lies outside the images folder {images_dir}")
        if not src.is_file():
            raise DatasetError(path, f"image id {iid}: file {src} not found")
        if iid in images:
            raise DatasetError(path, f"image id {iid} appears twice; expected unique image ids")
        if image_size(src) != (int(h), int(w)):
            raise DatasetError(path, f"image id {iid}: {src} is {image_size(src)[::-1]} (w, h); json says {(w, h)}")
        images[iid] = {"src": src, "w": w, "h": h, "lines": []}
    try:
        annotations = sorted(doc["annotations"], key=lambda a: int(a.get("id", 0)))
    except (AttributeError, TypeError, ValueError, OverflowError):
        raise DatasetError(path, "every annotation must be an object with an integer 'id'") from None
    for ann in annotations:
        aid = ann.get("id")
        if ann.get("iscrowd", 0) not in (0, 1):
            raise DatasetError(path, f"annotation id {aid}: iscrowd {ann['iscrowd']!r}; expected 0 or 1")
        if ann.get("iscrowd", 0):
            continue
        try:
            iid, cid = int(ann["image_id"]), int(ann["category_id"])
            if not isinstance(ann["bbox"], list) or len(ann["bbox"]) != 4:
                raise ValueError
            x, y, bw, bh = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError, OverflowError):
            problem = "expected image_id, category_id and bbox [x, y, w, h]"
            raise DatasetError(path, f"annotation id {aid}: {problem}") from None
        if iid not in images or cid not in cat_map:
            raise DatasetError(path, f"annotation id {aid}: unknown image_id {iid} or category_id {cid}")
        im = images[iid]
        t = BOX_TOLERANCE
        if not (bw > 0 and bh > 0 and x >= -t and y >= -t and x + bw <= im["w"] + t and y + bh <= im["h"] + t):
            raise DatasetError(path, f"annotation id {aid}: bbox {[x, y, bw, bh]} is empty or outside the "
                               f"{im['w']:g}x{im['h']:g} image; expected [x, y, w, h] inside it")
        x1, y1 = np.clip([x, y], 0, [im["w"], im["h"]])
        x2, y2 = np.clip([x + bw, y + bh], 0, [im["w"], im["h"]])
        im["lines"].append(f"{cat_map[cid]} {(x1 + x2) / 2 / im['w']:.6f} {(y1 + y2) / 2 / im['h']:.6f} "
                           f"{(x2 - x1) / im['w']:.6f} {(y2 - y1) / im['h']:.6f}\n")
    out: dict[str, tuple[Path, str]] = {}
    stems: set[str] = set()
    for iid, im in images.items():
        if im["src"].stem in stems:
            raise DatasetError(path, f"image id {iid}: a second image named {im['src'].stem}.*; expected unique names")
        stems.add(im["src"].stem)
        out[im["src"].name] = (im["src"], "".join(im["lines"]))
    return out


def coco_to_yolo(ann_json: str | Path, images_dir: str | Path, out_dir: str | Path, val_json: str | Path | None = None,
                 val_images_dir: str | Path | None = None, val_fraction: float = 0.2, seed: int = 0) -> Path:
    """Convert COCO detection json(s) to ``out_dir`` (YOLO layout) and return its data.yaml.

    Category ids map to 0..nc-1 in sorted id order. Without ``val_json`` the images of ``ann_json`` are split
    at random (``seed``) with ``val_fraction`` going to val. Crowd annotations are dropped. The folder appears
    atomically.
    """
    ann_json = Path(ann_json)
    doc = _read_json(ann_json)
    cat_map, names = _categories(ann_json, doc)
    files = _convert(ann_json, doc, Path(images_dir), cat_map)
    if val_json is not None:
        vpath = Path(val_json)
        vdoc = _read_json(vpath)
        if _categories(vpath, vdoc) != (cat_map, names):
            raise DatasetError(vpath, f"categories differ from {ann_json}; expected the same ids and names")
        splits = {"train": files, "val": _convert(vpath, vdoc, Path(val_images_dir or images_dir), cat_map)}
    else:
        if not 0 < val_fraction < 1 or len(files) < 2:
            raise ValueError(f"{ann_json}: need >= 2 images and 0 < val_fraction < 1 to split, "
                             f"got {len(files)} images, val_fraction={val_fraction}")
        keys = sorted(files)
        order = np.random.default_rng(seed).permutation(len(keys))
        n_val = min(max(1, round(len(keys) * val_fraction)), len(keys) - 1)
        val = {keys[k] for k in order[:n_val]}
        splits = {"train": {k: v for k, v in files.items() if k not in val},
                  "val": {k: v for k, v in files.items() if k in val}}
    with atomic_dir(out_dir) as tmp:
        for split, entries in splits.items():
            (tmp / "images" / split).mkdir(parents=True)
            (tmp / "labels" / split).mkdir(parents=True)
            for name, (src, text) in entries.items():
                shutil.copyfile(src, tmp / "images" / split / name)
                (tmp / "labels" / split / Path(name).with_suffix(".txt")).write_text(text)
        (tmp / "data.yaml").write_text(dump_data_yaml(len(names), names))
    return Path(out_dir) / "data.yaml"
