"""A tiny, easy YOLO dataset drawn for tests that need a model to really learn within seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw


def write_simple_dataset(root: Path, n_images: int = 4, imgsz: int = 64, seed: int = 0,
                         val_is_train: bool = True) -> Path:
    """Squares (class 0) and discs (class 1), one to two large objects per image on a plain background."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        img = Image.new("RGB", (imgsz, imgsz), tuple(int(v) for v in rng.integers(0, 80, 3)))
        draw = ImageDraw.Draw(img)
        lines = []
        slots = [(0, 0), (imgsz // 2, imgsz // 2)] if i % 2 else [(0, imgsz // 2)]
        for x0, y0 in slots:
            side = int(rng.integers(imgsz // 4, imgsz // 2 - 2))
            x, y = x0 + int(rng.integers(0, imgsz // 2 - side + 1)), y0 + int(rng.integers(0, imgsz // 2 - side + 1))
            cls = int(rng.integers(0, 2))
            colour = tuple(int(v) for v in rng.integers(150, 256, 3))
            (draw.rectangle if cls == 0 else draw.ellipse)([x, y, x + side - 1, y + side - 1], fill=colour)
            lines.append(f"{cls} {(x + side / 2) / imgsz:.6f} {(y + side / 2) / imgsz:.6f} "
                         f"{side / imgsz:.6f} {side / imgsz:.6f}")
        for split in ("train", "val") if val_is_train else ("train",):
            img.save(root / "images" / split / f"{i:03d}.png")
            (root / "labels" / split / f"{i:03d}.txt").write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text(yaml.safe_dump(
        {"path": ".", "train": "images/train", "val": "images/val", "nc": 2, "names": ["square", "disc"]}))
    return root / "data.yaml"
