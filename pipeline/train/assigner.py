"""Task-aligned label assignment (TOOD / YOLOv8 style), with a centre prior so tiny objects get anchors."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.train.iou import box_iou_pairwise, power


@dataclass
class Assignment:
    fg_mask: torch.Tensor  # [B, N] bool
    target_boxes: torch.Tensor  # [B, N, 4] xyxy pixels
    target_scores: torch.Tensor  # [B, N, nc] soft targets (alignment-normalised)
    target_gt_idx: torch.Tensor  # [B, N] long


class TaskAlignedAssigner:
    """Scores each (gt, anchor) pair by cls_score**alpha * IoU**beta and keeps the top-k candidate anchors per gt.

    Candidates are anchors whose centre lies inside the gt box, or within `center_radius` strides of its centre
    (so a 6-pixel object at stride 8 still gets anchors).
    """

    def __init__(self, topk: int = 10, alpha: float = 0.5, beta: float = 6.0, center_radius: float = 1.0,
                 eps: float = 1e-9):
        self.topk, self.alpha, self.beta, self.center_radius, self.eps = topk, alpha, beta, center_radius, eps

    @torch.no_grad()
    def __call__(self, pred_scores: torch.Tensor, pred_boxes: torch.Tensor, points: torch.Tensor,
                 strides: torch.Tensor, gt_labels: torch.Tensor, gt_boxes: torch.Tensor,
                 gt_mask: torch.Tensor) -> Assignment:
        """pred_scores [B,N,nc] probabilities; pred_boxes [B,N,4] xyxy; points [N,2]; strides [N];
        gt_labels [B,M] long; gt_boxes [B,M,4] xyxy; gt_mask [B,M] bool (padding False)."""
        b, n, nc = pred_scores.shape
        m = gt_boxes.shape[1]
        device = pred_scores.device
        if m == 0 or not gt_mask.any():
            return Assignment(torch.zeros(b, n, dtype=torch.bool, device=device),
                              torch.zeros(b, n, 4, device=device), torch.zeros(b, n, nc, device=device),
                              torch.zeros(b, n, dtype=torch.long, device=device))
        candidates = self._candidates(points, strides, gt_boxes) & gt_mask[..., None]  # [B,M,N]
        iou = box_iou_pairwise(gt_boxes[:, :, None, :], pred_boxes[:, None, :, :]).clamp_(0)  # [B,M,N]
        cls_prob = pred_scores.gather(2, gt_labels[:, None, :].expand(b, n, m).clamp(0, nc - 1))
        cls_prob = cls_prob.permute(0, 2, 1)  # [B,M,N]
        align = power(cls_prob, self.alpha) * power(iou, self.beta) * candidates
        k = min(self.topk, n)
        top_idx = align.topk(k, dim=2).indices
        topk_mask = torch.zeros_like(align, dtype=torch.bool).scatter_(2, top_idx, True)
        pos = topk_mask & candidates & (align > 0) | self._fallback(align, candidates, top_idx)
        # an anchor claimed by several gts goes to the gt it overlaps most
        multi = pos.sum(1, keepdim=True) > 1
        best_gt = iou.masked_fill(~pos, -1).argmax(1, keepdim=True)
        pos = torch.where(multi, torch.zeros_like(pos).scatter_(1, best_gt, True) & pos, pos)
        fg = pos.any(1)
        gt_idx = pos.float().argmax(1)  # [B,N]
        batch = torch.arange(b, device=device)[:, None]
        target_boxes = gt_boxes[batch, gt_idx]
        target_labels = gt_labels[batch, gt_idx]
        align_pos = align * pos
        norm = (align_pos / (align_pos.amax(2, keepdim=True) + self.eps)) * (iou * pos).amax(2, keepdim=True)
        weight = norm.amax(1)  # [B,N]
        target_scores = torch.zeros(b, n, nc, device=device)
        target_scores.scatter_(2, target_labels[..., None], 1.0)
        target_scores *= (weight * fg)[..., None]
        return Assignment(fg, target_boxes, target_scores, gt_idx)

    def _candidates(self, points: torch.Tensor, strides: torch.Tensor, gt_boxes: torch.Tensor) -> torch.Tensor:
        px, py = points[:, 0], points[:, 1]
        x1, y1, x2, y2 = (gt_boxes[..., i, None] for i in range(4))
        inside = (px > x1) & (px < x2) & (py > y1) & (py < y2)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        r = self.center_radius * strides
        near = ((px - cx).abs() < r) & ((py - cy).abs() < r)
        return inside | near

    def _fallback(self, align: torch.Tensor, candidates: torch.Tensor, top_idx: torch.Tensor) -> torch.Tensor:
        """A gt whose candidates all have zero alignment (untrained model) keeps its best candidate anchor."""
        empty = ((align > 0) & candidates).sum(2, keepdim=True) == 0
        first = torch.zeros_like(candidates).scatter_(2, top_idx[..., :1], True)
        return first & candidates & empty
