import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pipeline.evaluate.coco import coco_eval

# Hand-written COCO case: 2 images, 2 categories (ids 1, 2), boxes in xywh.
GT_JSON = {
    "images": [{"id": 1, "width": 200, "height": 100}, {"id": 2, "width": 200, "height": 100}],
    "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 40], "area": 2000, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [100, 20, 60, 60], "area": 3600, "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 100, 100], "area": 10000, "iscrowd": 0},
        {"id": 4, "image_id": 2, "category_id": 1, "bbox": [120, 10, 40, 40], "area": 1600, "iscrowd": 0},
    ],
}
DET_JSON = [  # cat: 2 of 3 found (one at IoU 0.64), one false positive; dog found but loosely
    {"image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 40], "score": 0.9},
    {"image_id": 1, "category_id": 2, "bbox": [100, 20, 60, 42], "score": 0.8},
    {"image_id": 2, "category_id": 1, "bbox": [0, 0, 100, 64], "score": 0.7},
    {"image_id": 2, "category_id": 1, "bbox": [170, 60, 20, 20], "score": 0.95},
]


def _xyxy(xywh):
    x, y, w, h = xywh
    return [x, y, x + w, y + h]


def _to_lists(gt_json, det_json, n_images=2):
    gts, dets = [], []
    for i in range(1, n_images + 1):
        anns = [a for a in gt_json["annotations"] if a["image_id"] == i]
        gts.append((np.array([_xyxy(a["bbox"]) for a in anns], np.float32).reshape(-1, 4),
                    np.array([a["category_id"] - 1 for a in anns]), (100, 200)))
        ds = [d for d in det_json if d["image_id"] == i]
        dets.append(np.array([_xyxy(d["bbox"]) + [d["score"], d["category_id"] - 1] for d in ds],
                             np.float32).reshape(-1, 6))
    return gts, dets


def _direct(tmp_path, gt_json, det_json):
    """pycocotools on json files, the way its own docs use it."""
    (tmp_path / "gt.json").write_text(json.dumps(gt_json))
    (tmp_path / "dt.json").write_text(json.dumps(det_json))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(tmp_path / "gt.json"))
        ev = COCOeval(gt, gt.loadRes(str(tmp_path / "dt.json")), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def test_agrees_with_pycocotools_on_json(tmp_path):
    ev = _direct(tmp_path, GT_JSON, DET_JSON)
    gts, dets = _to_lists(GT_JSON, DET_JSON)
    res = coco_eval(gts, dets, nc=2, names=["cat", "dog"])
    assert res["map"] == pytest.approx(ev.stats[0], abs=1e-9)
    assert res["map50"] == pytest.approx(ev.stats[1], abs=1e-9)
    assert 0.0 < res["map"] < res["map50"] < 1.0
    # per-class AP50 of "cat": recall 0 at first (FP with top score), then 2/3 found -> not 1
    cat_ap50 = ev.eval["precision"][0, :, 0, 0, 2]
    assert res["per_class"]["cat"]["ap50"] == pytest.approx(cat_ap50.mean())
    assert res["per_class"]["cat"]["n_gt"] == 3 and res["per_class"]["dog"]["n_gt"] == 1
    curve = res["pr_curve"]["cat"]
    assert len(curve) == 101 and curve[0][0] == 0.0 and curve[-1][0] == 1.0
    np.testing.assert_allclose([p for _, p in curve], cat_ap50)


def test_perfect_detections_give_one():
    gts, _ = _to_lists(GT_JSON, DET_JSON)
    dets = [np.concatenate([b, np.ones((len(b), 1)), c[:, None]], 1) for b, c, _ in gts]
    res = coco_eval(gts, dets, nc=2, names=["cat", "dog"])
    assert res["map"] == pytest.approx(1.0) and res["map50"] == pytest.approx(1.0)


def test_one_of_two_missed(tmp_path):
    gt = {"images": [{"id": 1, "width": 100, "height": 100}], "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "area": 400,
                           "iscrowd": 0},
                          {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 50, 30, 30], "area": 900,
                           "iscrowd": 0}]}
    dt = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.9}]
    ev = _direct(tmp_path, gt, dt)
    gts, dets = _to_lists(gt, dt, n_images=1)
    res = coco_eval(gts, dets, nc=1, names=["a"])
    assert res["map50"] == pytest.approx(ev.stats[1])
    assert res["map50"] == pytest.approx(51 / 101)  # precision 1 for recall thresholds 0..0.5
    assert res["map"] == pytest.approx(51 / 101)


def test_iou_062_counts_at_050_not_at_075():
    gts = [(np.array([[0, 0, 100, 100]], np.float32), np.array([0]))]
    dets = [np.array([[0, 0, 100, 62, 0.9, 0]], np.float32)]  # IoU 0.62
    res = coco_eval(gts, dets, nc=1, names=["a"])
    assert res["map50"] == pytest.approx(1.0)
    assert res["map"] == pytest.approx(0.3)  # thresholds 0.50, 0.55, 0.60 of the 10


def test_class_absent_from_gt_is_excluded():
    gts = [(np.array([[0, 0, 10, 10]], np.float32), np.array([0]), (50, 50))]
    dets = [np.array([[0, 0, 10, 10, 0.9, 0], [20, 20, 30, 30, 0.8, 2]], np.float32)]
    res = coco_eval(gts, dets, nc=3, names=["a", "b", "c"])
    assert res["map"] == pytest.approx(1.0)  # mean over classes with ground truth only
    assert res["per_class"]["c"] == {"ap50": 0.0, "ap": 0.0, "n_gt": 0}
    assert res["pr_curve"]["b"] == [] and not any(np.isnan(v["ap"]) for v in res["per_class"].values())


def test_empty_detections_give_zeros():
    gts, _ = _to_lists(GT_JSON, DET_JSON)
    res = coco_eval(gts, [np.zeros((0, 6), np.float32)] * 2, nc=2, names=["cat", "dog"])
    assert res["map"] == 0.0 and res["map50"] == 0.0
    assert res["per_class"]["cat"]["ap"] == 0.0 and res["per_class"]["cat"]["n_gt"] == 3
    empty_gt = [(np.zeros((0, 4)), np.zeros(0))]
    assert coco_eval(empty_gt, [np.zeros((0, 6))], nc=1)["map"] == 0.0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="class ids"):
        coco_eval([(np.array([[0, 0, 1, 1]]), np.array([5]))], [np.zeros((0, 6))], nc=2)
    with pytest.raises(ValueError, match="detection lists"):
        coco_eval([(np.zeros((0, 4)), np.zeros(0))], [], nc=1)


# ---- the shared evaluator -------------------------------------------------------------------------------

from PIL import Image  # noqa: E402

from pipeline.evaluate.evaluator import evaluate, targets_to_original  # noqa: E402
from pipeline.infer.postprocess import make_anchors  # noqa: E402


class OracleBackend:
    """Returns, for each image in call order, the given letterboxed targets encoded at their nearest anchor."""

    name, imgsz = "oracle", 64

    def __init__(self, targets_per_image, shift=0.0, nc=2):
        self.queue, self.shift, self.nc = list(targets_per_image), shift, nc

    def __call__(self, batch):
        pts, _ = make_anchors(self.imgsz)
        boxes = np.zeros((len(batch), len(pts), 4), np.float32)
        scores = np.zeros((len(batch), len(pts), self.nc), np.float32)
        for b in range(len(batch)):
            for cls, x1, y1, x2, y2 in np.asarray(self.queue.pop(0)).reshape(-1, 5):
                x1, x2 = x1 + self.shift, x2 + self.shift
                i = int(np.argmin(((pts - [(x1 + x2) / 2, (y1 + y2) / 2]) ** 2).sum(1)))
                px, py = pts[i]
                boxes[b, i] = [px - x1, py - y1, x2 - px, y2 - py]
                scores[b, i, int(cls)] = 0.9
        return boxes, scores


def _yolo_folder(tmp_path):
    """3 non-square images in YOLO layout (images/, labels/), 2 classes."""
    img_dir, lab_dir = tmp_path / "images", tmp_path / "labels"
    img_dir.mkdir()
    lab_dir.mkdir()
    specs = {"a.png": ((100, 60), ["0 0.3 0.4 0.3 0.5", "1 0.75 0.5 0.3 0.6"]),
             "b.png": ((50, 120), ["1 0.5 0.25 0.6 0.3"]),
             "c.png": ((80, 80), ["0 0.5 0.5 0.5 0.5", "0 0.15 0.15 0.2 0.2"])}
    for name, ((w, h), lines) in specs.items():
        Image.new("RGB", (w, h), (30, 60, 90)).save(img_dir / name)
        (lab_dir / name.replace(".png", ".txt")).write_text("\n".join(lines) + "\n")
    return img_dir


def test_evaluate_yolo_dataset_oracle(tmp_path):
    from pipeline.data.dataset import YoloDataset

    ds = YoloDataset(_yolo_folder(tmp_path), nc=2, imgsz=64, names=["x", "y"])
    targets = [ds[i][1].numpy() for i in range(len(ds))]
    res = evaluate(OracleBackend(targets), ds, batch_size=2, progress=False)
    assert res["images"] == 3 and res["seconds"] > 0
    assert res["map"] == pytest.approx(1.0) and set(res["per_class"]) == {"x", "y"}
    # a 3-pixel shift in the 64-px letterboxed frame is a ~5-px error in original pixels: IoU drops
    shifted = evaluate(OracleBackend(targets, shift=3.0), ds, batch_size=2, progress=False)
    assert shifted["map50"] == pytest.approx(1.0) and shifted["map"] < 0.9


def test_evaluate_plain_dataset_maps_targets_back():
    """A dataset without ground_truth(): gts come from letterboxed targets through meta."""
    meta = {"path": "p", "orig_shape": (60, 100), "ratio": 0.64, "pad": (0, 13)}
    t = np.array([[1, 10 * 0.64, 5 * 0.64 + 13, 60 * 0.64, 40 * 0.64 + 13]], np.float32)
    boxes, classes = targets_to_original(t, meta)
    np.testing.assert_allclose(boxes, [[10, 5, 60, 40]], atol=1e-4)
    assert classes.tolist() == [1]
    items = [(np.zeros((3, 64, 64), np.float32), t, meta)] * 2
    res = evaluate(OracleBackend([t, t]), items, batch_size=8, progress=False)
    assert res["map"] == pytest.approx(1.0) and res["per_class"]["1"]["n_gt"] == 2
    with pytest.raises(ValueError, match="empty"):
        evaluate(OracleBackend([]), [], progress=False)
