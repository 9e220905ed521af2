import numpy as np
import pytest
from PIL import Image

from pipeline.infer.postprocess import make_anchors
from pipeline.infer.predict import Detections, predict

IMGSZ = 64


class FixedBackend:
    """Fake backend: every image gets the same letterboxed xyxy boxes (cls, score given), at their nearest anchor."""

    name, imgsz = "fixed", IMGSZ

    def __init__(self, dets, nc=2):
        self.dets, self.nc = dets, nc
        self.calls = 0

    def __call__(self, batch):
        self.calls += 1
        assert batch.shape[1:] == (3, IMGSZ, IMGSZ) and batch.dtype == np.float32 and batch.max() <= 1.0
        pts, _ = make_anchors(IMGSZ)
        boxes = np.zeros((len(batch), len(pts), 4), np.float32)
        scores = np.zeros((len(batch), len(pts), self.nc), np.float32)
        for x1, y1, x2, y2, score, cls in self.dets:
            i = int(np.argmin(((pts - [(x1 + x2) / 2, (y1 + y2) / 2]) ** 2).sum(1)))
            px, py = pts[i]
            boxes[:, i] = [px - x1, py - y1, x2 - px, y2 - py]
            scores[:, i, int(cls)] = score
        return boxes, scores


def _image(w=100, h=60):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


# original 100x60 -> ratio 0.64, resized 64x38, pad (0, 13): original [10, 5, 60, 40] is letterboxed
# [6.4, 16.2, 38.4, 38.6]; a box in the bottom padding band is clipped to the image.
LB_DETS = [(6.4, 16.2, 38.4, 38.6, 0.9, 1), (40.0, 30.0, 60.0, 60.0, 0.6, 0), (50, 2, 60, 10, 0.1, 0)]


def test_boxes_in_original_pixels_non_square():
    img = _image()
    (res,) = predict(FixedBackend(LB_DETS), img, conf_thres=0.25, names=["cat", "dog"])
    assert isinstance(res, Detections) and len(res) == 2 and res.path is None  # 0.1 below conf_thres
    np.testing.assert_allclose(res.boxes[0], [10, 5, 60, 40], atol=1e-3)
    np.testing.assert_allclose(res.boxes[1], [62.5, 26.5625, 93.75, 60], atol=1e-3)  # y2 clipped to h=60
    np.testing.assert_allclose(res.scores, [0.9, 0.6], atol=1e-6)
    assert res.classes.tolist() == [1, 0] and res.labels == ["dog", "cat"]
    assert res.to_array().shape == (2, 6) and res.orig_img.shape == (60, 100, 3)


def test_plot_and_atomic_save(tmp_path):
    img = _image()
    (res,) = predict(FixedBackend(LB_DETS), Image.fromarray(img), names=["cat", "dog"])
    plotted = res.plot()
    assert plotted.size == (100, 60)
    assert not np.array_equal(np.asarray(plotted), img)
    assert np.array_equal(np.asarray(res.orig_img), img)  # the original is not drawn on
    out = res.save(tmp_path / "sub" / "out.png")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (100, 60)
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), np.asarray(plotted))
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.png"]  # no temp file left behind
    with pytest.raises(ValueError, match="extension"):
        res.save(tmp_path / "out.xyz")


def test_folder_glob_and_list_inputs(tmp_path):
    for name, size in [("b.png", (100, 60)), ("a.jpg", (40, 80))]:
        Image.fromarray(_image(*size)).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    backend = FixedBackend(LB_DETS)
    by_folder = predict(backend, tmp_path)
    assert [r.path for r in by_folder] == [str(tmp_path / "a.jpg"), str(tmp_path / "b.png")]
    assert by_folder[0].orig_img.shape == (80, 40, 3) and by_folder[1].orig_img.shape == (60, 100, 3)
    np.testing.assert_allclose(by_folder[1].boxes[0], [10, 5, 60, 40], atol=1e-3)
    assert len(predict(backend, str(tmp_path / "*.png"))) == 1
    mixed = predict(backend, [tmp_path / "b.png", Image.fromarray(_image()), _image(30, 30)], batch_size=2)
    assert [r.path is None for r in mixed] == [False, True, True]
    assert mixed[2].orig_img.shape == (30, 30, 3) and (mixed[2].boxes <= 30).all()


def test_bad_inputs(tmp_path):
    backend = FixedBackend(LB_DETS)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        predict(backend, tmp_path / "missing.png")
    with pytest.raises(FileNotFoundError, match="no images"):
        predict(backend, str(tmp_path / "*.jpg"))
    with pytest.raises(ValueError, match="uint8 HWC RGB"):
        predict(backend, np.zeros((10, 10), np.float32))
    assert backend.calls == 0
