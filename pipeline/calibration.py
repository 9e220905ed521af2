"""Draw the PTQ calibration images: a seeded subset of the training split, letterboxed like inference input."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import YoloDataset


def draw_calibration_images(data_yaml: str | Path, imgsz: int, subset_size: int, seed: int = 0) -> np.ndarray:
    """float32 NCHW [subset_size, 3, imgsz, imgsz] in [0, 1], without augmentation."""
    data = load_data_yaml(data_yaml)
    dataset = YoloDataset(data.train, data.nc, imgsz, augment=None, names=data.names)
    if subset_size > len(dataset):
        raise ValueError(f"calibrate.subset_size={subset_size} is larger than the training split "
                         f"({len(dataset)} images in {data.train})")
    picks = np.random.default_rng(seed).choice(len(dataset), size=subset_size, replace=False)
    return np.stack([dataset[int(i)][0].numpy() for i in sorted(picks)]).astype(np.float32)
