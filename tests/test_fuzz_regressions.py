"""One focused test per bug the fuzz test (tests/test_fuzz.py) found: each input once leaked a library's exception,
crashed the process or was accepted silently; each now ends in an error that names the file or key."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from pipeline.config.params import ParamsError, load_section
from pipeline.config.stages import DataParams, EvaluateParams, WebParams
from pipeline.data.coco import coco_to_yolo
from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import build_index
from pipeline.data.errors import DatasetError
from pipeline.data.labels import image_size, load_image, parse_labels
from pipeline.data.prepare import prepare_dataset
from pipeline.infer.backends import OnnxBackend, TFLiteBackend
from pipeline.io.checkpoint import read_checkpoint
from tests.fuzz_seeds import png_with_size, tiny_onnx, tiny_tflite
from tests.simple_data import write_simple_dataset

REPO = Path(__file__).resolve().parents[1]


# --- params.yaml ----------------------------------------------------------------------------------------------------
def _params(tmp_path: Path, section: str, **changes) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params[section].update(changes)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 10**400])
def test_a_non_finite_number_in_params_names_its_key(tmp_path, value):
    """NaN passed every range check (`nan <= 0` is False): evaluate.conf_thres: .nan was accepted."""
    path = tmp_path / "params.yaml"
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["evaluate"]["conf_thres"] = value
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=r"evaluate\.conf_thres: expected a finite number"):
        load_section(path, "evaluate", EvaluateParams)


def test_a_section_that_is_not_a_mapping_or_a_file_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("web: 3\n")  # leaked TypeError: 'int' object is not iterable
    with pytest.raises(ParamsError, match=r"section 'web': expected a mapping"):
        load_section(path, "web", WebParams)
    path.write_bytes(b"web:\n  conf_thres: caf\xe9\n")  # leaked UnicodeDecodeError, no file name
    with pytest.raises(ParamsError, match=f"{path}: not UTF-8"):
        load_section(path, "web", WebParams)
    path.write_bytes(b"[" * 100_000)  # leaked RecursionError
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_section(path, "web", WebParams)


def test_each_threshold_error_names_its_own_key(tmp_path):
    """`conf_thres must be in [0, 1) and iou_thres in (0, 1]` named evaluate.conf_thres when iou_thres was wrong."""
    with pytest.raises(ParamsError, match=r"evaluate\.iou_thres must be in \(0, 1\], got 0"):
        load_section(_params(tmp_path, "evaluate", iou_thres=0), "evaluate", EvaluateParams)
    with pytest.raises(ParamsError, match=r"data\.n_val must be > 0"):
        load_section(_params(tmp_path, "data", n_val=0), "data", DataParams)


# --- labels, images, data.yaml --------------------------------------------------------------------------------------
def test_a_label_file_with_a_byte_order_mark_parses(tmp_path):
    """A BOM (Windows editors write one) made the first field '\\ufeff0': 'non-numeric field' on a valid file."""
    path = tmp_path / "x.txt"
    path.write_text("0 0.5 0.5 0.2 0.2\r\n1 0.25 0.25 0.1 0.1\r\n", encoding="utf-8-sig")
    np.testing.assert_allclose(parse_labels(path, 2), [[0, 0.5, 0.5, 0.2, 0.2], [1, 0.25, 0.25, 0.1, 0.1]], atol=1e-6)


def test_a_decompression_bomb_header_is_refused_not_decoded(tmp_path):
    """100 M pixels declared (PIL only warns below 179 M): the index accepted it, training then tried to decode it."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_with_size(10_000, 10_000))
    for read in (image_size, load_image):
        with pytest.raises(DatasetError, match=f"{path}: .*DecompressionBomb"):
            read(path)


def test_the_index_refuses_an_image_whose_pixel_data_is_cut_short(tmp_path):
    """PIL's verify() passes a truncated TIFF: the data stage counted it valid, training could not read it."""
    buf = io.BytesIO()
    Image.new("RGB", (18, 23), (200, 10, 10)).save(buf, "TIFF")
    write_simple_dataset(tmp_path, n_images=2, imgsz=32)
    path = tmp_path / "images" / "val" / "cut.tif"
    path.write_bytes(buf.getvalue()[:-200])
    with Image.open(path) as im:
        im.verify()  # the check the index relied on
    with pytest.raises(DatasetError, match=f"{path}: cannot read image"):
        build_index(path.parent, 2)
    assert [p.name for p, _ in build_index(path.parent, 2, on_error="skip").skipped] == ["cut.tif"]


def test_data_yaml_nested_too_deep_and_a_split_outside_any_images_folder_name_the_yaml(tmp_path):
    data = write_simple_dataset(tmp_path / "ds", n_images=2, imgsz=32)
    deep = tmp_path / "deep.yaml"
    deep.write_bytes(b"[" * 100_000)  # leaked RecursionError
    with pytest.raises(DatasetError, match=f"{deep}: not valid YAML"):
        load_data_yaml(deep)
    doc = yaml.safe_load(data.read_text())
    data.write_text(yaml.safe_dump({**doc, "train": "/"}))  # "/x.png: no 'images' folder in the path"
    params = DataParams(source=str(data), coco_images="", n_train=1, n_val=1, imgsz=32, min_object_px=2,
                        max_object_px=16, max_clutter=0, max_objects=2, seed=0, on_error="raise", dep="/")
    with pytest.raises(DatasetError, match=f"{data}: key 'train': / is not an 'images' folder"):
        prepare_dataset(params, tmp_path / "out")


# --- COCO json ------------------------------------------------------------------------------------------------------
@pytest.fixture
def coco(tmp_path):
    write_simple_dataset(tmp_path / "ds", n_images=2, imgsz=32)
    images = tmp_path / "ds" / "images" / "train"
    doc = {"images": [{"id": k, "file_name": f"00{k}.png", "width": 32, "height": 32} for k in (0, 1)],
           "annotations": [{"id": k + 1, "image_id": k, "category_id": 1, "iscrowd": 0, "bbox": [2, 2, 10, 10]}
                           for k in (0, 1)],
           "categories": [{"id": 1, "name": "square"}]}
    return doc, images, tmp_path


@pytest.mark.parametrize("change, expected", [
    (("images", 0, "width", float("nan")), "image id 0: width, height nan, 32; expected positive integers"),
    (("images", 0, "width", float("inf")), "image id 0: width, height inf, 32; expected positive integers"),
    (("images", 0, "file_name", "../../../outside.png"), "image id 0: file_name '../../../outside.png' lies outside the images"),
    (("images", 1, "id", 0), "image id 0 appears twice"),
    (("annotations", 0, "id", "x"), "every annotation must be an object with an integer 'id'"),
    (("annotations", 0, "bbox", "1234"), r"annotation id 1: expected image_id, category_id and bbox \[x, y, w, h\]"),
    (("annotations", 0, "iscrowd", "yes"), "annotation id 1: iscrowd 'yes'; expected 0 or 1"),
    (("annotations", 0, "image_id", float("inf")), r"annotation id 1: expected image_id"),
])
def test_coco_values_that_leaked_or_passed_name_the_json(coco, change, expected):
    """NaN width: 'cannot convert float NaN to integer'; inf: OverflowError; a file outside the images folder was
    copied in; a bbox string '1234' was read as [1, 2, 3, 4]; a duplicate image id overwrote the first image."""
    doc, images, tmp_path = coco
    (tmp_path / "outside.png").write_bytes((images / "000.png").read_bytes())
    key, index, field, value = change
    doc[key][index][field] = value
    source = tmp_path / "train.json"
    source.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=f"{source}: {expected}"):
        coco_to_yolo(source, images, tmp_path / "out")


# --- model files ----------------------------------------------------------------------------------------------------
def test_a_tflite_whose_offset_points_outside_it_is_refused_without_a_crash(tmp_path):
    """LiteRT's file loader does not verify the flatbuffer: this file killed the process with SIGSEGV (run in a
    child here, so a regression fails this test instead of ending the run)."""
    data = bytearray(tiny_tflite())
    data[1172:1176] = (0x7FFFFFFF).to_bytes(4, "little")
    path = tmp_path / "offset.tflite"
    path.write_bytes(bytes(data))
    code = ("import sys\nfrom pipeline.infer.backends import TFLiteBackend\ntry:\n    TFLiteBackend(sys.argv[1])\n"
            "except ValueError as e:\n    print('refused:', e)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-1000:]}"
    assert f"refused: {path}: not a valid TFLite model" in proc.stdout


def test_malformed_onnx_and_tflite_raise_value_errors_naming_the_file(tmp_path):
    """onnxruntime's InvalidProtobuf / Fail are not ValueErrors (the CLI printed a traceback); LiteRT's RuntimeError
    from allocate_tensors and a UnicodeDecodeError from a tensor name named no file."""
    onnx_path = tmp_path / "cut.onnx"
    onnx_path.write_bytes(tiny_onnx()[:200])
    with pytest.raises(ValueError, match=f"{onnx_path}: not a valid ONNX model"):
        OnnxBackend(onnx_path)
    data = tiny_tflite()
    name = data.index(b"images")  # the input tensor's name
    bad_name = tmp_path / "name.tflite"
    bad_name.write_bytes(data[:name] + b"\xa4" + data[name + 1:])
    with pytest.raises(ValueError, match=f"{bad_name}: not a valid TFLite model"):
        TFLiteBackend(bad_name)


@pytest.fixture(scope="module")
def seed_pt(tmp_path_factory) -> Path:
    from leafyolo import LEAFYOLO

    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    LEAFYOLO("leafyolo_u", nc=2, names=["a", "b"], imgsz=32).save(path)
    return path


@pytest.mark.parametrize("key, value, expected", [
    ("nc", 10**9, r"key 'nc' is '1000000000'; expected an integer in \[1, 10000\]"),
    ("imgsz", 0, r"key 'imgsz' is '0'; expected a multiple of 32"),
    ("names", ["a"], "key 'names' is \"\\['a'\\]\"; expected a list of 2 class names"),
    ("model", None, "key 'model' is 'None'; expected a state dict"),
    ("act", None, "key 'act' is 'None'; expected an activation name"),
])
def test_a_checkpoint_field_is_checked_before_the_model_is_built_from_it(tmp_path, seed_pt, key, value, expected):
    """nc=10**9 tried to allocate 288 GB (RuntimeError from torch), imgsz=0 failed deep in a conv, model=None in
    load_state_dict (TypeError), names of the wrong length were taken as they were."""
    ckpt = torch.load(seed_pt, weights_only=True)
    ckpt[key] = value
    path = tmp_path / "bad.pt"
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match=f"checkpoint {path}: {expected}"):
        read_checkpoint(path)


def test_a_checkpoint_with_an_unknown_activation_names_the_file(tmp_path, seed_pt):
    from pipeline.io.model_loader import load_model

    ckpt = torch.load(seed_pt, weights_only=True)
    path = tmp_path / "act.pt"
    torch.save({**ckpt, "act": "nope"}, path)
    with pytest.raises(ValueError, match=f"checkpoint {path}: cannot rebuild its leafyolo_u architecture: unknown activation"):
        load_model(path)
