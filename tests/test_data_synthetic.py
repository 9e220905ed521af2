"""The synthetic default dataset: determinism, class/size coverage, report, atomic output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import ground_truth
from pipeline.data.synthetic import CLASS_NAMES, describe_dataset, generate_dataset


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("syn") / "a", n_train=16, n_val=4, imgsz=256, seed=0)


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    a = generate_dataset(tmp_path / "a", n_train=3, n_val=2, imgsz=128, seed=5).parent
    b = generate_dataset(tmp_path / "b", n_train=3, n_val=2, imgsz=128, seed=5).parent
    c = generate_dataset(tmp_path / "c", n_train=3, n_val=2, imgsz=128, seed=6).parent
    ta, tb, tc = tree_bytes(a), tree_bytes(b), tree_bytes(c)
    assert len(ta) == 2 * 5 + 1 and ta == tb
    assert ta.keys() == tc.keys()
    assert all(ta[k] != tc[k] for k in ta if k.endswith(".png"))


def test_layout_goes_through_the_loader(synth: Path) -> None:
    cfg = load_data_yaml(synth)
    assert cfg.nc == len(CLASS_NAMES) == 5 and cfg.names == CLASS_NAMES
    assert "path: ." in synth.read_text()
    assert len(list(cfg.train.glob("*.png"))) == 16 and len(list(cfg.val.glob("*.png"))) == 4


def test_all_classes_small_and_large_objects(synth: Path) -> None:
    cfg = load_data_yaml(synth)
    gts = ground_truth(cfg.train, cfg.nc)
    classes = np.concatenate([g.classes for g in gts])
    boxes = np.concatenate([g.boxes for g in gts])
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    assert set(classes.tolist()) == set(range(5))
    for c in range(5):
        assert (sides[classes == c] < 16).any(), f"class {c} has no small box"
    assert (sides < 16).sum() > 20 and (sides > 48).sum() > 5
    per_image = [len(g.classes) for g in gts]
    assert min(per_image) >= 1 and max(per_image) <= 12


def test_colour_does_not_reveal_the_class(synth: Path) -> None:
    """Mean object colour per class is about the same: a colour threshold cannot separate the classes."""
    from PIL import Image

    cfg = load_data_yaml(synth)
    means: dict[int, list[np.ndarray]] = {c: [] for c in range(5)}
    for g in ground_truth(cfg.train, cfg.nc):
        img = np.asarray(Image.open(g.path).convert("RGB"), np.float32)
        for c, (x1, y1, x2, y2) in zip(g.classes, g.boxes.astype(int)):
            cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
            means[int(c)].append(img[cy, cx])
    centres = np.array([np.mean(v, 0) for v in means.values()])
    assert np.ptp(centres, axis=0).max() < 60  # uniform colours give ~128 per channel for every class


def test_describe_dataset_report(synth: Path) -> None:
    rep = describe_dataset(synth)
    tr = rep["splits"]["train"]
    assert rep["names"] == CLASS_NAMES and tr["images"] == 16 and rep["splits"]["val"]["images"] == 4
    assert sum(tr["boxes_per_class"].values()) == tr["boxes"] == sum(tr["box_size_hist"].values())
    assert list(tr["box_size_hist"]) == ["<8", "8-16", "16-32", "32-64", "64-128", ">=128"]
    assert tr["box_size_hist"]["<8"] + tr["box_size_hist"]["8-16"] > 0 and tr["box_size_hist"]["32-64"] > 0


def test_output_is_atomic_and_user_folders_are_kept(tmp_path: Path) -> None:
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="mine"):
        generate_dataset(user, n_train=1, n_val=1, imgsz=64)
    assert (user / "notes.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no temporary folder left behind
    out = generate_dataset(tmp_path / "ds", n_train=1, n_val=1, imgsz=64, seed=0)
    again = generate_dataset(tmp_path / "ds", n_train=2, n_val=1, imgsz=64, seed=0)  # a dataset is replaced
    assert out == again and len(list((tmp_path / "ds" / "images" / "train").iterdir())) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "mine"]
