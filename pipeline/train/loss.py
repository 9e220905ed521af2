"""Detection loss: each term its own method; the assigner is passed in, not built inside."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pipeline.infer.postprocess import make_anchors
from pipeline.train.assigner import Assignment, TaskAlignedAssigner
from pipeline.train.iou import box_ciou, power


@dataclass(frozen=True)
class LossWeights:
    box: float = 7.5
    cls: float = 1.0
    qfl_gamma: float = 0.0  # > 0: quality focal loss; 0: plain BCE (no gain measured at the CPU budget)


def targets_to_padded(targets: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[M, 6] (batch_idx, cls, x1, y1, x2, y2) -> labels [B, K], boxes [B, K, 4], mask [B, K]."""
    device = targets.device
    counts = torch.bincount(targets[:, 0].long(), minlength=batch_size) if len(targets) else \
        torch.zeros(batch_size, dtype=torch.long, device=device)
    k = int(counts.max()) if len(targets) else 0
    labels = torch.zeros(batch_size, k, dtype=torch.long, device=device)
    boxes = torch.zeros(batch_size, k, 4, device=device)
    mask = torch.zeros(batch_size, k, dtype=torch.bool, device=device)
    for i in range(batch_size):
        rows = targets[targets[:, 0] == i]
        labels[i, : len(rows)] = rows[:, 1].long()
        boxes[i, : len(rows)] = rows[:, 2:6]
        mask[i, : len(rows)] = True
    return labels, boxes, mask


class DetectionLoss:
    def __init__(self, assigner: TaskAlignedAssigner, weights: LossWeights | None = None,
                 strides: tuple[int, ...] = (8, 16, 32)):
        weights = weights if weights is not None else LossWeights()
        self.assigner, self.weights, self.strides = assigner, weights, strides
        self.qfl_gamma = weights.qfl_gamma
        self._anchors: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}

    def anchors(self, imgsz: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (imgsz, str(device))
        if key not in self._anchors:
            points, strides = make_anchors(imgsz, self.strides)
            self._anchors[key] = (torch.as_tensor(points, device=device), torch.as_tensor(strides, device=device,
                                                                                          dtype=torch.float32))
        return self._anchors[key]

    def __call__(self, boxes: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor,
                 imgsz: int) -> tuple[torch.Tensor, dict[str, float]]:
        """boxes [B,N,4] ltrb pixel distances, logits [B,N,nc], targets [M,6]. Returns (loss, parts)."""
        points, strides = self.anchors(imgsz, boxes.device)
        pred_xyxy = torch.cat((points - boxes[..., :2], points + boxes[..., 2:]), -1)
        labels, gt_boxes, gt_mask = targets_to_padded(targets, boxes.shape[0])
        assignment = self.assigner(logits.detach().sigmoid(), pred_xyxy.detach().float(), points, strides,
                                   labels, gt_boxes, gt_mask)
        norm = assignment.target_scores.sum().clamp(min=1.0)
        loss_cls = self.loss_cls(logits, assignment, norm)
        loss_box = self.loss_box(pred_xyxy, assignment, norm)
        loss = (self.weights.cls * loss_cls + self.weights.box * loss_box) * boxes.shape[0]
        return loss, {"cls": float(loss_cls.detach()), "box": float(loss_box.detach())}

    def loss_cls(self, logits: torch.Tensor, a: Assignment, norm: torch.Tensor) -> torch.Tensor:
        """Quality focal loss (Li et al. 2020): BCE against the alignment-weighted soft targets, scaled by
        |target - p|^gamma so the thousands of easy background anchors do not drown the few positives."""
        logits = logits.float()
        bce = F.binary_cross_entropy_with_logits(logits, a.target_scores, reduction="none")
        if self.qfl_gamma:
            bce = bce * power((logits.sigmoid() - a.target_scores).abs(), self.qfl_gamma)
        return bce.sum() / norm

    def loss_box(self, pred_xyxy: torch.Tensor, a: Assignment, norm: torch.Tensor) -> torch.Tensor:
        """(1 - CIoU) on positive anchors, weighted by their soft target score."""
        if not a.fg_mask.any():
            return pred_xyxy.sum() * 0.0
        weight = a.target_scores.sum(-1)[a.fg_mask]
        ciou = box_ciou(pred_xyxy[a.fg_mask].float(), a.target_boxes[a.fg_mask])
        return ((1.0 - ciou) * weight).sum() / norm
