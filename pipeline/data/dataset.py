"""YOLO-layout torch Dataset (items as in CONTRACTS.md), collate, and ground truth for evaluation."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from pipeline.config.augment import AugmentParams
from pipeline.data.augment import augment_hsv, copy_paste, hflip, mixup, random_affine
from pipeline.data.data_yaml import DataConfig
from pipeline.data.errors import DatasetError
from pipeline.data.labels import IMAGE_SUFFIXES, image_size, label_path_for, labels_for, list_images, load_image
from pipeline.data.letterbox import pad_to_square, resize_keep_aspect
from pipeline.data.mosaic import mosaic4

log = logging.getLogger(__name__)
OnError = Literal["raise", "skip"]


@dataclass(frozen=True)
class GroundTruth:
    """One image's labels in ORIGINAL pixels: boxes float32 [n, 4] xyxy, classes int64 [n]."""

    path: Path
    orig_shape: tuple[int, int]
    boxes: np.ndarray
    classes: np.ndarray


@dataclass
class _Index:
    images: list[Path]
    labels: list[np.ndarray]  # normalised (cls, cx, cy, w, h)
    shapes: list[tuple[int, int]]  # (h, w)
    skipped: list[tuple[Path, str]]
    decoded: list[np.ndarray] | None


def build_index(images_dir: str | Path, nc: int, on_error: OnError = "raise", decode: bool = False) -> _Index:
    """Validate every image and label file once; with ``on_error="skip"`` bad ones are listed, not raised."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error: expected 'raise' or 'skip', got {on_error!r}")
    files = list_images(images_dir)
    if not files:
        raise DatasetError(images_dir, f"no images found; expected files ending in {', '.join(IMAGE_SUFFIXES)}")
    if not label_path_for(files[0]).parent.is_dir():
        warnings.warn(f"{label_path_for(files[0]).parent}: no labels folder; every image is treated as background",
                      stacklevel=2)
    idx = _Index([], [], [], [], [] if decode else None)
    for path in files:
        try:
            labels = labels_for(path, nc)
            img = load_image(path) if decode else None
            shape = img.shape[:2] if img is not None else image_size(path)
        except DatasetError as e:
            if on_error == "raise":
                raise
            idx.skipped.append((path, str(e)))
            log.debug("skipping %s", e)
            continue
        idx.images.append(path)
        idx.labels.append(labels)
        idx.shapes.append((int(shape[0]), int(shape[1])))
        if idx.decoded is not None:
            idx.decoded.append(img)
    if idx.skipped:
        first = "; ".join(reason for _, reason in idx.skipped[:3])
        warnings.warn(f"{images_dir}: skipped {len(idx.skipped)} of {len(files)} images ({first})", stacklevel=2)
    if not idx.images:
        raise DatasetError(images_dir, "every image was skipped as invalid; expected at least one valid image")
    return idx


def _norm_to_xyxy(labels: np.ndarray, w: float, h: float) -> np.ndarray:
    """(cls, cx, cy, bw, bh) normalised -> (cls, x1, y1, x2, y2) in a w x h pixel frame."""
    out = np.empty((len(labels), 5), dtype=np.float32)
    out[:, 0] = labels[:, 0]
    out[:, 1] = (labels[:, 1] - labels[:, 3] / 2) * w
    out[:, 2] = (labels[:, 2] - labels[:, 4] / 2) * h
    out[:, 3] = (labels[:, 1] + labels[:, 3] / 2) * w
    out[:, 4] = (labels[:, 2] + labels[:, 4] / 2) * h
    return out


def ground_truth(images_dir: str | Path, nc: int, on_error: OnError = "raise") -> list[GroundTruth]:
    """Labels of every valid image in ``images_dir`` in original pixels (for a COCO ground truth)."""
    idx = build_index(images_dir, nc, on_error)
    return [_gt(p, lab, s) for p, lab, s in zip(idx.images, idx.labels, idx.shapes)]


def _gt(path: Path, labels: np.ndarray, shape: tuple[int, int]) -> GroundTruth:
    t = _norm_to_xyxy(labels, shape[1], shape[0])
    return GroundTruth(path, shape, t[:, 1:5].copy(), t[:, 0].astype(np.int64))


class YoloDataset(Dataset):
    """Images of a YOLO split, letterboxed to ``imgsz``; see CONTRACTS.md for the item format.

    Every file is validated at construction. With ``cache_images`` the images are decoded once and kept
    resized (long side ``imgsz``) in memory. Augmentation is reproducible: item ``i`` of epoch ``e`` draws
    from ``np.random.default_rng([seed, e, i])`` whatever the worker; call :meth:`set_epoch` each epoch.
    """

    def __init__(self, images_dir: str | Path, nc: int, imgsz: int, augment: AugmentParams | None = None,
                 on_error: OnError = "raise", cache_images: bool = True, names: Sequence[str] | None = None,
                 seed: int = 0) -> None:
        if not isinstance(imgsz, Integral) or imgsz < 32 or imgsz % 32:
            raise ValueError(f"imgsz: expected a positive multiple of 32, got {imgsz!r}")
        if not isinstance(nc, Integral) or nc <= 0:
            raise ValueError(f"nc: expected a positive integer, got {nc!r}")
        if names is not None and len(names) != nc:
            raise ValueError(f"names: expected {nc} class names, got {len(names)}")
        self.images_dir, self.nc, self.imgsz, self.augment = Path(images_dir), int(nc), int(imgsz), augment
        self.names = list(names) if names is not None else [str(i) for i in range(nc)]
        self.seed, self.epoch = int(seed), 0
        idx = build_index(images_dir, nc, on_error, decode=cache_images)
        self.images, self.labels, self.shapes, self.skipped = idx.images, idx.labels, idx.shapes, idx.skipped
        self._cache = [resize_keep_aspect(im, imgsz)[0] for im in idx.decoded] if idx.decoded is not None else None

    @classmethod
    def from_config(cls, cfg: DataConfig, split: str, imgsz: int, **kwargs: Any) -> YoloDataset:
        """Dataset of ``split`` ("train"/"val") of a loaded data.yaml."""
        return cls(cfg.split(split), cfg.nc, imgsz, names=cfg.names, **kwargs)

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch``."""
        self.epoch = int(epoch)

    def ground_truth(self) -> list[GroundTruth]:
        """Labels of the dataset's images in original pixels, in item order."""
        return [_gt(p, lab, s) for p, lab, s in zip(self.images, self.labels, self.shapes)]

    def ratio(self, i: int) -> float:
        """Letterbox scale of image ``i``."""
        h, w = self.shapes[i]
        return min(self.imgsz / h, self.imgsz / w)

    def resized(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Image ``i`` resized (long side imgsz) and its (cls, x1, y1, x2, y2) targets in that frame."""
        if self._cache is not None:
            img = self._cache[i]
        else:
            img = resize_keep_aspect(load_image(self.images[i]), self.imgsz)[0]
        h, w = self.shapes[i]
        r = self.ratio(i)
        if img.shape[:2] != (max(1, round(h * r)), max(1, round(w * r))):
            raise DatasetError(self.images[i], f"image changed on disk since indexing; expected {w}x{h}")
        return img, _norm_to_xyxy(self.labels[i], w * r, h * r)

    def _letterboxed(self, i: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        img, t = self.resized(i)
        img, pad = pad_to_square(img, self.imgsz)
        t[:, [1, 3]] += pad[0]
        t[:, [2, 4]] += pad[1]
        return img, t, pad

    def _augmented(self, i: int, rng: np.random.Generator, allow_mixup: bool = True) -> tuple[np.ndarray, np.ndarray]:
        p, n, s = self.augment, len(self), self.imgsz
        assert p is not None
        if rng.random() < p.mosaic:
            picks = [i, *(int(j) for j in rng.integers(0, n, 3))]
            tiles = [self.resized(j) for j in picks]
            img, t = mosaic4([a for a, _ in tiles], [b for _, b in tiles], s, rng)
        else:
            img, t, _ = self._letterboxed(i)
        if p.copy_paste > 0 and rng.random() < p.copy_paste:
            donor, donor_t = self.resized(int(rng.integers(0, n)))
            img, t = copy_paste(img, t, donor, donor_t, rng)
        img, t = random_affine(img, t, s, p, rng)
        if allow_mixup and p.mixup > 0 and rng.random() < p.mixup:
            img2, t2 = self._augmented(int(rng.integers(0, n)), rng, allow_mixup=False)
            img, t = mixup(img, t, img2, t2, rng)
        img = augment_hsv(img, p, rng)
        if rng.random() < p.fliplr:
            img, t = hflip(img, t)
        return img, t

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} images")
        h, w = self.shapes[i]
        r = self.ratio(i)
        pad = ((self.imgsz - max(1, round(w * r))) // 2, (self.imgsz - max(1, round(h * r))) // 2)
        if self.augment is None:
            img, t, pad = self._letterboxed(i)
        else:
            img, t = self._augmented(i, np.random.default_rng([self.seed, self.epoch, i]))
        meta = {"path": str(self.images[i]), "orig_shape": (h, w), "ratio": r, "pad": pad}
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0)
        return x, torch.from_numpy(np.ascontiguousarray(t, dtype=np.float32).reshape(-1, 5)), meta


def collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor, dict]]) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """Stack items -> (imgs [B, 3, S, S], targets [M, 6] = (batch_idx, cls, x1, y1, x2, y2), metas)."""
    imgs = torch.stack([b[0] for b in batch])
    targets = [torch.cat([torch.full((len(b[1]), 1), float(k)), b[1]], 1) for k, b in enumerate(batch)]
    return imgs, torch.cat(targets) if targets else torch.zeros((0, 6)), [b[2] for b in batch]
