"""Bad user input: data.yaml, label files and images must fail early with the file (and line) named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import YoloDataset
from pipeline.data.errors import DatasetError
from pipeline.data.labels import label_path_for, parse_labels


def make_split(root: Path, split: str, labels: dict[str, str], size: tuple[int, int] = (64, 48)) -> Path:
    """Write PNG images (w, h = size) and their label texts into the YOLO layout under ``root``."""
    img_dir, lab_dir = root / "images" / split, root / "labels" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    lab_dir.mkdir(parents=True, exist_ok=True)
    for stem, text in labels.items():
        Image.new("RGB", size, (10, 200, 30)).save(img_dir / f"{stem}.png")
        if text is not None:
            (lab_dir / f"{stem}.txt").write_text(text)
    return img_dir


def write_yaml(root: Path, text: str) -> Path:
    path = root / "data.yaml"
    path.write_text(text)
    return path


GOOD_YAML = "path: .\ntrain: images/train\nval: images/val\nnc: 2\nnames: [a, b]\n"


def test_data_yaml_resolves_paths_and_dict_names(tmp_path: Path) -> None:
    make_split(tmp_path / "ds", "train", {"x": "0 0.5 0.5 0.2 0.2\n"})
    make_split(tmp_path / "ds", "val", {"y": ""})
    yaml = write_yaml(tmp_path, "path: ds\ntrain: images/train\nval: images/val\nnc: 2\nnames: {1: b, 0: a}\n")
    cfg = load_data_yaml(yaml)
    assert cfg.train == (tmp_path / "ds" / "images" / "train").resolve()
    assert cfg.val == (tmp_path / "ds" / "images" / "val").resolve()
    assert (cfg.nc, cfg.names) == (2, ["a", "b"])


@pytest.mark.parametrize("key", ["train", "val", "names"])
def test_data_yaml_missing_key_names_yaml_and_key(tmp_path: Path, key: str) -> None:
    make_split(tmp_path, "train", {"x": ""})
    make_split(tmp_path, "val", {"y": ""})
    text = "".join(line + "\n" for line in GOOD_YAML.splitlines() if not line.startswith(key))
    with pytest.raises(DatasetError, match=rf"data\.yaml.*'{key}'"):
        load_data_yaml(write_yaml(tmp_path, text))


def test_data_yaml_missing_split_folder_names_path(tmp_path: Path) -> None:
    make_split(tmp_path, "train", {"x": ""})
    with pytest.raises(DatasetError, match=r"'val'.*images/val.*does not exist"):
        load_data_yaml(write_yaml(tmp_path, GOOD_YAML))


def test_data_yaml_nc_must_match_names(tmp_path: Path) -> None:
    make_split(tmp_path, "train", {"x": ""})
    make_split(tmp_path, "val", {"y": ""})
    with pytest.raises(DatasetError, match=r"'nc' is 3 but 'names' lists 2"):
        load_data_yaml(write_yaml(tmp_path, GOOD_YAML.replace("nc: 2", "nc: 3")))


@pytest.mark.parametrize("line, expected", [
    ("0 0.5 0.5 0.2", r"4 fields"),
    ("0 0.5 0.5 0.2 0.2 0.1", r"6 fields"),
    ("0 0.5 abc 0.2 0.2", r"non-numeric"),
    ("0 0.95 0.5 0.2 0.2", r"outside the image"),
    ("0 0.5 -0.1 0.1 0.1", r"outside the image"),
    ("0 0.5 0.5 0.0 0.2", r"expected both > 0"),
    ("0 0.5 0.5 0.2 -0.2", r"expected both > 0"),
    ("2 0.5 0.5 0.2 0.2", r"class id '2'; expected an integer in \[0, 1\]"),
    ("-1 0.5 0.5 0.2 0.2", r"class id '-1'"),
    ("0.5 0.5 0.5 0.2 0.2", r"class id '0.5'"),
    ("0 nan 0.5 0.2 0.2", r"non-finite"),
])
def test_bad_label_line_names_file_and_line(tmp_path: Path, line: str, expected: str) -> None:
    path = tmp_path / "img.txt"
    path.write_text(f"1 0.5 0.5 0.2 0.2\n\n{line}\n")  # bad line is line 3 (blank lines count)
    with pytest.raises(DatasetError, match=expected) as err:
        parse_labels(path, nc=2)
    assert str(path) in str(err.value) and "line 3" in str(err.value)
    assert err.value.line == 3


def test_labels_tolerate_eps_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "ok.txt"
    path.write_text("1 0.9000005 0.5 0.2 0.2\n1.0 0.5 0.5 1 1\n")
    labels = parse_labels(path, nc=2)
    assert labels.shape == (2, 5)
    assert np.all(labels[:, 1] + labels[:, 3] / 2 <= 1.0)  # overshoot clipped
    assert parse_labels(tmp_path / "absent.txt", nc=2).shape == (0, 5)


def test_label_path_swaps_last_images_component(tmp_path: Path) -> None:
    image = tmp_path / "images" / "set" / "images" / "train" / "a.jpg"
    assert label_path_for(image) == tmp_path / "images" / "set" / "labels" / "train" / "a.txt"
    with pytest.raises(DatasetError, match="no 'images' folder"):
        label_path_for(tmp_path / "pics" / "a.jpg")


def test_corrupt_image_names_the_image(tmp_path: Path) -> None:
    img_dir = make_split(tmp_path, "train", {"good": "0 0.5 0.5 0.2 0.2\n"})
    bad = img_dir / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    for cache in (True, False):
        with pytest.raises(DatasetError, match=r"broken\.jpg.*cannot"):
            YoloDataset(img_dir, nc=2, imgsz=64, cache_images=cache)


def test_truncated_png_fails_at_construction_when_caching(tmp_path: Path) -> None:
    img_dir = make_split(tmp_path, "train", {"a": ""})
    noisy = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(img_dir / "cut.png")
    data = (img_dir / "cut.png").read_bytes()
    (img_dir / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"cut\.png"):
        YoloDataset(img_dir, nc=2, imgsz=64)


def test_bad_label_file_fails_dataset_construction(tmp_path: Path) -> None:
    img_dir = make_split(tmp_path, "train", {"a": "0 0.5 0.5 0.2 0.2\n", "b": "0 0.5 0.5 0.2 0.2\n5 0.5 0.5 0.1 0.1\n"})
    with pytest.raises(DatasetError, match=r"labels/train/b\.txt, line 2: class id '5'"):
        YoloDataset(img_dir, nc=2, imgsz=64)


def test_skip_policy_excludes_and_counts_bad_files(tmp_path: Path) -> None:
    img_dir = make_split(tmp_path, "train", {
        "a": "0 0.5 0.5 0.2 0.2\n", "b": "1 0.2 0.2 0.1 0.1\n", "c": None,
        "d": "0 0.5 0.5 0.2\n",  # malformed label file
    })
    (img_dir / "e.png").write_bytes(b"not a png")  # corrupt image
    with pytest.warns(UserWarning, match=r"skipped 2 of 5 images"):
        ds = YoloDataset(img_dir, nc=2, imgsz=64, on_error="skip")
    assert [p.stem for p in ds.images] == ["a", "b", "c"]
    assert sorted(p.name for p, _ in ds.skipped) == ["d.png", "e.png"]
    assert any("d.txt, line 1" in reason for _, reason in ds.skipped)
    assert len(ds[2][1]) == 0  # missing label file: an image without objects
    with pytest.raises(ValueError, match="on_error"):
        YoloDataset(img_dir, nc=2, imgsz=64, on_error="ignore")  # type: ignore[arg-type]


def test_missing_labels_folder_warns_and_gives_background(tmp_path: Path) -> None:
    img_dir = tmp_path / "images" / "train"
    img_dir.mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(img_dir / "a.png")
    with pytest.warns(UserWarning, match=r"labels/train: no labels folder"):
        ds = YoloDataset(img_dir, nc=1, imgsz=32)
    assert len(ds) == 1 and ds[0][1].shape == (0, 5)


def test_empty_image_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "images" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"images/train: no images found"):
        YoloDataset(tmp_path / "images" / "train", nc=1, imgsz=32)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        YoloDataset(tmp_path / "images" / "nowhere", nc=1, imgsz=32)
