"""COCO json import: round trip against a generated dataset, and errors naming the json and annotation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.data.coco import coco_to_yolo
from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import ground_truth
from pipeline.data.errors import DatasetError
from pipeline.data.labels import label_path_for, parse_labels
from pipeline.data.synthetic import generate_dataset


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("coco") / "ds", n_train=4, n_val=2, imgsz=128, seed=2)


def to_coco(images_dir: Path, nc: int, names: list[str], cat_ids: list[int]) -> dict:
    """A COCO dict of a YOLO split, with non-contiguous category ids."""
    doc: dict = {"images": [], "annotations": [], "categories": [{"id": i, "name": n} for i, n in zip(cat_ids, names)]}
    for k, gt in enumerate(ground_truth(images_dir, nc)):
        h, w = gt.orig_shape
        doc["images"].append({"id": 100 + k, "file_name": gt.path.name, "width": w, "height": h})
        for c, (x1, y1, x2, y2) in zip(gt.classes, gt.boxes.tolist()):
            doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": 100 + k, "iscrowd": 0,
                                       "category_id": cat_ids[int(c)], "bbox": [x1, y1, x2 - x1, y2 - y1]})
    return doc


def test_round_trip_reproduces_labels(synth: Path, tmp_path: Path) -> None:
    cfg = load_data_yaml(synth)
    cat_ids = [3, 7, 11, 20, 42]
    for split in ("train", "val"):
        (tmp_path / f"{split}.json").write_text(json.dumps(to_coco(cfg.split(split), cfg.nc, cfg.names, cat_ids)))
    out = coco_to_yolo(tmp_path / "train.json", cfg.train, tmp_path / "out", val_json=tmp_path / "val.json",
                       val_images_dir=cfg.val)
    new = load_data_yaml(out)
    assert new.names == cfg.names and new.nc == cfg.nc
    for split in ("train", "val"):
        src = sorted(cfg.split(split).iterdir())
        dst = sorted(new.split(split).iterdir())
        assert [p.name for p in src] == [p.name for p in dst]
        for a, b in zip(src, dst):
            assert a.read_bytes() == b.read_bytes()
            expected = parse_labels(label_path_for(a), 5)
            np.testing.assert_allclose(parse_labels(label_path_for(b), 5), expected, atol=2e-6)


def test_random_split_without_val_json(synth: Path, tmp_path: Path) -> None:
    cfg = load_data_yaml(synth)
    (tmp_path / "all.json").write_text(json.dumps(to_coco(cfg.train, cfg.nc, cfg.names, [0, 1, 2, 3, 4])))
    new = load_data_yaml(coco_to_yolo(tmp_path / "all.json", cfg.train, tmp_path / "out", val_fraction=0.25))
    assert len(list(new.train.iterdir())) == 3 and len(list(new.val.iterdir())) == 1


def test_bbox_outside_image_names_json_and_annotation(synth: Path, tmp_path: Path) -> None:
    cfg = load_data_yaml(synth)
    doc = to_coco(cfg.train, cfg.nc, cfg.names, [0, 1, 2, 3, 4])
    doc["annotations"][2]["bbox"] = [100.0, 10.0, 40.0, 10.0]  # x + w = 140 > width 128
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=rf"bad\.json: annotation id {doc['annotations'][2]['id']}: bbox"):
        coco_to_yolo(bad, cfg.train, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_image_names_json_and_file(synth: Path, tmp_path: Path) -> None:
    cfg = load_data_yaml(synth)
    doc = to_coco(cfg.train, cfg.nc, cfg.names, [0, 1, 2, 3, 4])
    doc["images"][1]["file_name"] = "ghost.png"
    bad = tmp_path / "ghost.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"ghost\.json: image id 101: file .*ghost\.png not found"):
        coco_to_yolo(bad, cfg.train, tmp_path / "out")
