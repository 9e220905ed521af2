"""Draw the PTQ calibration images: a seeded subset of the training split, letterboxed like inference input."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.config.stages import calibration_size
from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import YoloDataset


def draw_calibration_images(data_yaml: str | Path, imgsz: int, subset_size: int, seed: int = 0) -> np.ndarray:
    """float32 NCHW [n, 3, imgsz, imgsz] in [0, 1], without augmentation: n = `subset_size`, or the whole
    training split when it is smaller (the caller reports how many were used)."""
    data = load_data_yaml(data_yaml)
    dataset = YoloDataset(data.train, data.nc, imgsz, augment=None, names=data.names)
    picks = np.random.default_rng(seed).choice(len(dataset), size=calibration_size(subset_size, len(dataset)),
                                               replace=False)
    return np.stack([dataset[int(i)][0].numpy() for i in sorted(picks)]).astype(np.float32)
