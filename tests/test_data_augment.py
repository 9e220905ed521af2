"""Augmentation: parameter validation, box/pixel consistency, boxes inside the image, reproducibility."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.config.augment import AugmentParams
from pipeline.data.augment import augment_hsv, copy_paste, hflip, mixup, random_affine
from pipeline.data.dataset import YoloDataset
from pipeline.data.mosaic import mosaic4
from pipeline.data.synthetic import generate_dataset


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    yaml = generate_dataset(tmp_path_factory.mktemp("aug") / "ds", n_train=6, n_val=2, imgsz=128, seed=3)
    return yaml.parent / "images" / "train"


def white_box_image(size: int = 100) -> tuple[np.ndarray, np.ndarray]:
    img = np.zeros((size, size, 3), dtype=np.uint8)
    img[20:50, 30:80] = 255
    return img, np.array([[1, 30, 20, 80, 50]], dtype=np.float32)


def bright_bbox(img: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(img[..., 0] > 127)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)


def test_defaults_are_the_leaf_yolo_ultra_values() -> None:
    p = AugmentParams()
    assert (p.hsv_h, p.hsv_s, p.hsv_v, p.translate, p.scale) == (0.015, 0.7, 0.4, 0.1, 0.5)
    assert (p.fliplr, p.mosaic, p.mixup, p.copy_paste) == (0.5, 1.0, 0.0, 0.1)
    assert AugmentParams.from_dict({"mixup": 0.2}).mixup == 0.2


@pytest.mark.parametrize("kwargs, key", [
    ({"fliplr": 1.5}, "fliplr"), ({"mosaic": -0.1}, "mosaic"), ({"scale": 1.0}, "scale"),
    ({"hsv_s": "high"}, "hsv_s"), ({"copy_paste": True}, "copy_paste"),
])
def test_invalid_params_name_the_key(kwargs: dict, key: str) -> None:
    with pytest.raises(ValueError, match=f"'{key}'"):
        AugmentParams(**kwargs)


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="mosiac"):
        AugmentParams.from_dict({"mosiac": 1.0})


def test_affine_and_flip_move_boxes_with_pixels() -> None:
    img, t = white_box_image()
    p = AugmentParams(scale=0.4, translate=0.1)
    for seed in range(5):
        out, t2 = random_affine(img, t, 96, p, np.random.default_rng(seed))
        assert out.shape == (96, 96, 3) and len(t2) == 1
        np.testing.assert_allclose(t2[0, 1:], bright_bbox(out), atol=1.5)
    flipped, tf = hflip(img, t)
    np.testing.assert_allclose(tf[0, 1:], bright_bbox(flipped))


def test_affine_drops_boxes_pushed_out_of_frame() -> None:
    img, t = white_box_image()
    far = np.array([[0, 0, 0, 3, 3], [0, 95, 40, 100, 60]], dtype=np.float32)  # ends up tiny / cut away
    p = AugmentParams(scale=0.0, translate=0.0)
    _, t2 = random_affine(img, np.concatenate([t, far]), 64, p, np.random.default_rng(0))
    assert len(t2) == 1 and t2[0, 0] == 1


def test_mosaic_canvas_shape_and_boxes_inside(train_dir: Path) -> None:
    ds = YoloDataset(train_dir, nc=5, imgsz=64)
    tiles = [ds.resized(i) for i in range(4)]
    canvas, t = mosaic4([a for a, _ in tiles], [b for _, b in tiles], 64, np.random.default_rng(0))
    assert canvas.shape == (128, 128, 3) and canvas.dtype == np.uint8
    assert t.shape[1] == 5 and len(t) > 0
    assert (t[:, 1:] >= 0).all() and (t[:, 1:] <= 128).all()
    assert ((t[:, 3] - t[:, 1]) >= 2).all() and ((t[:, 4] - t[:, 2]) >= 2).all()


def test_copy_paste_and_mixup_add_boxes() -> None:
    img, t = white_box_image()
    donor = np.zeros((100, 100, 3), dtype=np.uint8)
    donor[60:90, 10:30] = 200
    dt = np.array([[3, 10, 60, 30, 90]], dtype=np.float32)
    out, t2 = copy_paste(img, t, donor, dt, np.random.default_rng(0))
    assert len(t2) == 2 and t2[1, 0] == 3
    x1, y1, x2, y2 = t2[1, 1:].astype(int)
    assert (out[y1:y2, x1:x2] == 200).all()  # the pasted pixels are where the new box says
    assert (out[20:50, 30:80] == 255).all()  # the existing object is not covered
    blended, t3 = mixup(img, t, donor, dt, np.random.default_rng(0))
    assert len(t3) == 2 and 0 < blended[25, 35, 0] < 255


def test_hsv_changes_colour_not_shape() -> None:
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = augment_hsv(img, AugmentParams(), np.random.default_rng(1))
    assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
    assert np.array_equal(augment_hsv(img, AugmentParams(hsv_h=0, hsv_s=0, hsv_v=0), np.random.default_rng(1)), img)


def test_augmented_items_are_valid_and_reproducible(train_dir: Path) -> None:
    p = AugmentParams(mixup=0.5, copy_paste=0.5)
    a = YoloDataset(train_dir, nc=5, imgsz=64, augment=p, seed=7)
    b = YoloDataset(train_dir, nc=5, imgsz=64, augment=p, seed=7, cache_images=False)
    for i in range(len(a)):
        img, t, _ = a[i]
        assert img.shape == (3, 64, 64)
        assert (t[:, 1:] >= 0).all() and (t[:, 1:] <= 64).all() and (t[:, 0] < 5).all()
        assert ((t[:, 3] - t[:, 1]) >= 2).all() and ((t[:, 4] - t[:, 2]) >= 2).all()
        img_b, t_b, _ = b[i]
        assert torch.equal(img, img_b) and torch.equal(t, t_b)
    first = [a[i][0] for i in range(3)]
    a.set_epoch(1)
    assert not all(torch.equal(x, a[i][0]) for i, x in enumerate(first))
    a.set_epoch(0)
    assert all(torch.equal(x, a[i][0]) for i, x in enumerate(first))
    c = YoloDataset(train_dir, nc=5, imgsz=64, augment=replace(p), seed=8)
    assert not all(torch.equal(x, c[i][0]) for i, x in enumerate(first))
