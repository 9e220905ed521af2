import numpy as np
import pytest
import torch

from pipeline.infer.postprocess import decode, make_anchors, nms, postprocess, scale_to_original


def test_anchor_count_and_order_imgsz64():
    pts, strides = make_anchors(64)
    assert pts.shape == (64 + 16 + 4, 2) and strides.shape == (84,)
    assert pts.dtype == np.float32
    # level-major: 64 stride-8 points, then 16 stride-16, then 4 stride-32
    assert (strides[:64] == 8).all() and (strides[64:80] == 16).all() and (strides[80:] == 32).all()
    # row-major within a level: x varies fastest
    np.testing.assert_array_equal(pts[:3], [[4, 4], [12, 4], [20, 4]])
    np.testing.assert_array_equal(pts[8], [4, 12])
    np.testing.assert_array_equal(pts[63], [60, 60])
    np.testing.assert_array_equal(pts[64], [8, 8])
    np.testing.assert_array_equal(pts[80:], [[16, 16], [48, 16], [16, 48], [48, 48]])


def test_decode_ltrb_to_xyxy():
    pts = np.array([[10.0, 20.0], [4.0, 4.0]], np.float32)
    ltrb = np.array([[[1, 2, 3, 4], [0, 0, 0, 0]]], np.float32)
    out = decode(ltrb, pts)
    np.testing.assert_allclose(out, [[[9, 18, 13, 24], [4, 4, 4, 4]]])
    out_t = decode(torch.from_numpy(ltrb), torch.from_numpy(pts))  # torch inputs accepted
    np.testing.assert_allclose(out_t, out)
    with pytest.raises(ValueError, match="anchor points"):
        decode(ltrb, pts[:1])


def test_nms_greedy():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 9.5]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    keep = nms(boxes, scores, 0.5)
    np.testing.assert_array_equal(keep, [3, 2])  # 3 suppresses 0 (IoU .95) and 1; 2 is far away
    assert len(nms(boxes, scores, 0.99)) == 4
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0,)


def _raw(imgsz, nc, entries):
    """Raw outputs with given (anchor index, ltrb, class, score) entries, everything else score 0."""
    n = make_anchors(imgsz)[0].shape[0]
    boxes = np.zeros((1, n, 4), np.float32)
    scores = np.zeros((1, n, nc), np.float32)
    for idx, ltrb, cls, score in entries:
        boxes[0, idx] = ltrb
        scores[0, idx, cls] = score
    return boxes, scores


def test_postprocess_per_class_nms():
    # anchors 0, 1, 2 have centres (4,4), (12,4), (20,4): boxes [0,0,40,40], [8,0,48,40] (IoU 0.67), and
    # for anchor 2 exactly [0,0,40,40] again but of another class
    big = (4, 4, 36, 36)
    boxes, scores = _raw(64, 3, [(0, big, 1, 0.9), (1, big, 1, 0.8), (2, (20, 4, 20, 36), 2, 0.7)])
    (det,) = postprocess(boxes, scores, 64, conf_thres=0.1, iou_thres=0.5)
    assert det.shape == (2, 6) and det.dtype == np.float32
    np.testing.assert_allclose(det[0], [0, 0, 40, 40, 0.9, 1], atol=1e-6)  # same class: 0.8 suppressed
    np.testing.assert_allclose(det[1], [0, 0, 40, 40, 0.7, 2], atol=1e-6)  # other class, IoU 1: kept
    (agn,) = postprocess(boxes, scores, 64, conf_thres=0.1, iou_thres=0.5, class_agnostic=True)
    assert agn.shape == (1, 6)
    (few,) = postprocess(boxes, scores, 64, conf_thres=0.85)
    assert few.shape == (1, 6)
    (none,) = postprocess(torch.from_numpy(boxes), torch.from_numpy(scores), 64, conf_thres=0.95)
    assert none.shape == (0, 6)
    with pytest.raises(ValueError, match="anchors"):
        postprocess(boxes, scores, 32)


def test_postprocess_max_det_and_batch():
    entries = [(i, (1, 1, 1, 1), 0, 0.5 + i / 200) for i in range(64)]  # 64 disjoint small boxes
    boxes, scores = _raw(64, 1, entries)
    b2, s2 = np.concatenate([boxes, boxes]), np.concatenate([scores, 0 * scores])
    dets = postprocess(b2, s2, 64, conf_thres=0.01, max_det=10)
    assert len(dets) == 2 and dets[0].shape == (10, 6) and dets[1].shape == (0, 6)
    assert (np.diff(dets[0][:, 4]) <= 0).all()  # sorted by score


def test_scale_to_original_round_trip():
    # original 60 (h) x 100 (w) letterboxed to 64: ratio 0.64, new 64x38 (38.4 rounded), pad y = 13
    ratio, pad, shape = 0.64, (0.0, 13.0), (60, 100)
    orig = np.array([[10, 5, 90, 55, 0.9, 2], [0, 0, 100, 60, 0.5, 0]], np.float32)
    lb = orig.copy()
    lb[:, [0, 2]] = orig[:, [0, 2]] * ratio + pad[0]
    lb[:, [1, 3]] = orig[:, [1, 3]] * ratio + pad[1]
    back = scale_to_original(lb, ratio, pad, shape)
    np.testing.assert_allclose(back, orig, atol=1e-4)
    # boxes reaching into the padding are clipped to the image
    clipped = scale_to_original(np.array([[-5, 0, 70, 64]], np.float32), ratio, pad, shape)
    np.testing.assert_allclose(clipped, [[0, 0, 100, 60]])
    assert scale_to_original(np.zeros((0, 6)), ratio, pad, shape).shape == (0, 6)
