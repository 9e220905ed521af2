"""Assigner, detection loss and distillation loss."""

import torch

from pipeline.infer.postprocess import make_anchors
from pipeline.train.assigner import TaskAlignedAssigner
from pipeline.train.distill import DistillationLoss, DistillWeights, FeatureAdapters
from pipeline.train.iou import box_ciou, box_iou_pairwise
from pipeline.train.loss import DetectionLoss, targets_to_padded


def test_iou_and_ciou_of_identical_and_disjoint_boxes():
    a = torch.tensor([[0.0, 0, 10, 10]])
    assert torch.allclose(box_iou_pairwise(a, a), torch.ones(1))
    assert torch.allclose(box_ciou(a, a), torch.ones(1), atol=1e-6)
    b = torch.tensor([[20.0, 20, 30, 30]])
    assert box_iou_pairwise(a, b).item() == 0 and box_ciou(a, b).item() < 0


def test_assigner_gives_every_object_anchors_even_tiny_ones():
    points, strides = (torch.as_tensor(v) for v in make_anchors(64))
    n = len(points)
    gt = torch.tensor([[[4.0, 4, 10, 10], [20, 20, 60, 60]]])  # a 6-pixel object and a large one
    labels = torch.tensor([[1, 0]])
    scores = torch.full((1, n, 2), 0.1)
    pred = torch.cat((points - 8, points + 8), -1)[None]
    a = TaskAlignedAssigner(topk=5)(scores, pred, points, strides, labels, gt, torch.tensor([[True, True]]))
    assigned = a.target_gt_idx[a.fg_mask]
    assert set(assigned.tolist()) == {0, 1}
    # targets carry the class of the object they were assigned to
    for gi, cls in ((0, 1), (1, 0)):
        rows = a.target_scores[a.fg_mask][assigned == gi]
        assert (rows.argmax(-1) == cls).all() and (rows.sum(-1) > 0).all()
    assert a.fg_mask.sum() <= 10


def test_padding_rows_never_get_anchors():
    points, strides = (torch.as_tensor(v) for v in make_anchors(64))
    gt = torch.tensor([[[20.0, 20, 40, 40], [0, 0, 64, 64]]])
    a = TaskAlignedAssigner()(torch.full((1, len(points), 1), 0.5), torch.cat((points - 8, points + 8), -1)[None],
                              points, strides, torch.zeros(1, 2, dtype=torch.long), gt,
                              torch.tensor([[True, False]]))
    assert (a.target_gt_idx[a.fg_mask] == 0).all()


def test_targets_to_padded():
    t = torch.tensor([[0, 1, 0, 0, 5, 5], [1, 0, 1, 1, 4, 4], [1, 2, 2, 2, 6, 6.0]])
    labels, boxes, mask = targets_to_padded(t, 3)
    assert labels.shape == (3, 2) and mask.tolist() == [[True, False], [True, True], [False, False]]
    assert boxes[1, 1].tolist() == [2, 2, 6, 6]


def test_detection_loss_is_lower_for_a_better_prediction():
    imgsz = 64
    points = torch.as_tensor(make_anchors(imgsz)[0])
    n = len(points)
    targets = torch.tensor([[0, 1, 16.0, 16, 48, 48]])
    loss_fn = DetectionLoss(TaskAlignedAssigner())
    # boxes that exactly fit the object from every anchor inside it, and high logits for class 1
    good = torch.stack((points[:, 0] - 16, points[:, 1] - 16, 48 - points[:, 0], 48 - points[:, 1]), -1).clamp(min=0)
    logits_good = torch.full((1, n, 2), -6.0)
    inside = (points > 16).all(-1) & (points < 48).all(-1)
    logits_good[0, inside, 1] = 4.0
    bad = torch.full((1, n, 4), 3.0)
    loss_good, _ = loss_fn(good[None], logits_good, targets, imgsz)
    loss_bad, parts = loss_fn(bad, torch.zeros(1, n, 2), targets, imgsz)
    assert loss_good < loss_bad and parts["box"] > 0 and parts["cls"] > 0


def test_loss_without_objects_only_penalises_scores():
    loss, parts = DetectionLoss(TaskAlignedAssigner())(torch.ones(1, 84, 4), torch.zeros(1, 84, 3),
                                                       torch.zeros(0, 6), 64)
    assert parts["box"] == 0 and parts["cls"] > 0 and torch.isfinite(loss)


def _feats(seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 8, s, s, generator=g) for s in (8, 4, 2)]


def test_distillation_loss_zero_when_student_equals_teacher_and_positive_otherwise():
    kd = DistillationLoss(DistillWeights(), FeatureAdapters([8, 8, 8], [8, 8, 8]))
    logits = torch.randn(2, 84, 3)
    same, parts = kd(logits, logits.clone(), _feats(0), _feats(0))
    assert abs(float(same)) < 1e-5 and abs(parts["kd_cls"]) < 1e-5 and abs(parts["kd_feat"]) < 1e-5
    diff, parts = kd(logits + torch.randn(2, 84, 3), logits, _feats(1), _feats(0))
    assert diff > 1e-3 and parts["kd_cls"] > 0 and parts["kd_feat"] > 0


def test_distillation_adapters_bridge_channel_widths_and_get_gradients():
    adapters = FeatureAdapters([8, 8, 8], [16, 16, 16])
    kd = DistillationLoss(DistillWeights(alpha=0.5), adapters)
    student = [f.requires_grad_() for f in _feats(0)]
    teacher = [torch.randn(2, 16, s, s) for s in (8, 4, 2)]
    loss, _ = kd(torch.randn(2, 84, 3), torch.randn(2, 84, 3), student, teacher)
    loss.backward()
    assert all(m.weight.grad is not None for m in adapters.maps) and student[0].grad is not None
