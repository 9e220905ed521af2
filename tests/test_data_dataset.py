"""YoloDataset items, letterbox maths, collate, ground truth, and the real BCCD data when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import YoloDataset, collate
from pipeline.data.labels import label_path_for, load_image, parse_labels
from pipeline.data.letterbox import letterbox
from pipeline.data.synthetic import generate_dataset

BCCD = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "bccd"


@pytest.fixture(scope="module")
def tiny_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("synth") / "ds", n_train=6, n_val=3, imgsz=128, seed=1)


def test_items_follow_the_contract(tiny_yaml: Path) -> None:
    cfg = load_data_yaml(tiny_yaml)
    ds = YoloDataset.from_config(cfg, "train", imgsz=96)
    assert len(ds) == 6 and ds.names == cfg.names
    for i in range(len(ds)):
        img, t, meta = ds[i]
        assert img.shape == (3, 96, 96) and img.dtype == torch.float32
        assert 0.0 <= img.min() and img.max() <= 1.0
        assert t.dtype == torch.float32 and t.ndim == 2 and t.shape[1] == 5
        assert len(t) == len(parse_labels(label_path_for(ds.images[i]), cfg.nc))
        assert ((t[:, 0] >= 0) & (t[:, 0] < cfg.nc)).all()
        assert (t[:, 1:] >= 0).all() and (t[:, 1:] <= 96).all()
        assert (t[:, 3] > t[:, 1]).all() and (t[:, 4] > t[:, 2]).all()
        assert meta["orig_shape"] == (128, 128) and meta["ratio"] == pytest.approx(0.75) and meta["pad"] == (0, 0)
    imgs, targets, metas = collate([ds[0], ds[1], ds[2]])
    assert imgs.shape == (3, 3, 96, 96) and len(metas) == 3
    counts = [len(ds[i][1]) for i in range(3)]
    assert targets.shape == (sum(counts), 6)
    assert torch.equal(targets[:, 0], torch.repeat_interleave(torch.arange(3.0), torch.tensor(counts)))


def test_cached_and_uncached_items_match(tiny_yaml: Path) -> None:
    cfg = load_data_yaml(tiny_yaml)
    a = YoloDataset(cfg.val, cfg.nc, 64, cache_images=True)
    b = YoloDataset(cfg.val, cfg.nc, 64, cache_images=False)
    for i in range(len(a)):
        assert torch.equal(a[i][0], b[i][0]) and torch.equal(a[i][1], b[i][1])


def test_letterbox_shape_padding_and_ratio() -> None:
    img = np.full((50, 200, 3), 255, dtype=np.uint8)
    out, ratio, (padx, pady) = letterbox(img, 64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert ratio == pytest.approx(0.32) and (padx, pady) == (0, 24)
    assert (out[:pady] == 114).all() and (out[pady + 16 :] == 114).all() and (out[pady : pady + 16] == 255).all()


def test_letterbox_round_trip_recovers_original_boxes(tmp_path: Path) -> None:
    """Targets mapped back with (t - pad) / ratio equal the labels in original pixels, and sit on the object."""
    img_dir, lab_dir = tmp_path / "images" / "val", tmp_path / "labels" / "val"
    img_dir.mkdir(parents=True)
    lab_dir.mkdir(parents=True)
    w, h = 300, 180
    arr = np.zeros((h, w, 3), dtype=np.uint8)
    boxes = np.array([[40, 30, 100, 90], [150, 100, 290, 170]], dtype=np.float32)  # xyxy original px
    for x1, y1, x2, y2 in boxes.astype(int):
        arr[y1:y2, x1:x2] = 255
    Image.fromarray(arr).save(img_dir / "r.png")
    lines = [f"{c} {(b[0] + b[2]) / 2 / w} {(b[1] + b[3]) / 2 / h} {(b[2] - b[0]) / w} {(b[3] - b[1]) / h}"
             for c, b in enumerate(boxes)]
    (lab_dir / "r.txt").write_text("\n".join(lines) + "\n")
    ds = YoloDataset(img_dir, nc=2, imgsz=128)
    img, t, meta = ds[0]
    assert meta["orig_shape"] == (h, w) and meta["pad"] == (0, (128 - round(h * meta["ratio"])) // 2)
    back = t[:, 1:].numpy().copy()
    back[:, [0, 2]] = (back[:, [0, 2]] - meta["pad"][0]) / meta["ratio"]
    back[:, [1, 3]] = (back[:, [1, 3]] - meta["pad"][1]) / meta["ratio"]
    np.testing.assert_allclose(back, boxes, atol=1e-3)
    np.testing.assert_array_equal(t[:, 0].numpy(), [0, 1])
    gt = ds.ground_truth()[0]
    np.testing.assert_allclose(gt.boxes, boxes, atol=1e-3)
    for x1, y1, x2, y2 in t[:, 1:].round().int().tolist():  # the bright object fills the letterboxed box
        assert img[:, y1 + 1 : y2 - 1, x1 + 1 : x2 - 1].min() > 0.9
        assert img[:, y1 - 2, x1:x2].max() < 0.5  # and the row just above it is background


def test_load_image_gives_rgb_uint8(tmp_path: Path) -> None:
    Image.new("L", (7, 5), 99).save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    assert img.shape == (5, 7, 3) and img.dtype == np.uint8 and (img == 99).all()


@pytest.mark.skipif(not (BCCD / "data.yaml").is_file(), reason=f"BCCD dataset not found at {BCCD}")
def test_bccd_loads_through_yolo_dataset() -> None:
    cfg = load_data_yaml(BCCD / "data.yaml")
    assert cfg.nc == 3 and cfg.names == ["RBC", "WBC", "Platelets"]
    ds = YoloDataset.from_config(cfg, "val", imgsz=320, cache_images=False)
    assert len(ds) > 0 and not ds.skipped
    for i in range(3):
        img, t, meta = ds[i]
        assert img.shape == (3, 320, 320)
        assert meta["orig_shape"] == (480, 640) and meta["ratio"] == pytest.approx(0.5) and meta["pad"] == (0, 40)
        assert len(t) > 0 and (t[:, 0] < 3).all()
        assert (t[:, [1, 3]] >= 0).all() and (t[:, [1, 3]] <= 320).all()
        assert (t[:, [2, 4]] >= 40 - 1e-3).all() and (t[:, [2, 4]] <= 280 + 1e-3).all()
