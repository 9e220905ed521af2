"""Knowledge distillation: class-score KL with a temperature plus channel-wise feature imitation (CWD).

total = alpha * distill + (1 - alpha) * detection, distill = cls_weight * KL(scores) + feat_weight * CWD(neck).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DistillWeights:
    alpha: float = 0.7
    temperature: float = 2.0
    cls_weight: float = 1.0
    feat_weight: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


class FeatureAdapters(nn.Module):
    """1x1 convs mapping student neck channels to the teacher's (identity where they already match).

    They are trained with the student but belong to the distiller, never to the exported model.
    """

    def __init__(self, student_channels: list[int], teacher_channels: list[int]):
        super().__init__()
        self.maps = nn.ModuleList(
            nn.Identity() if s == t else nn.Conv2d(s, t, 1) for s, t in zip(student_channels, teacher_channels))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [m(f) for m, f in zip(self.maps, feats)]


class DistillationLoss(nn.Module):
    def __init__(self, weights: DistillWeights, adapters: FeatureAdapters):
        super().__init__()
        self.weights, self.adapters = weights, adapters

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                student_feats: list[torch.Tensor], teacher_feats: list[torch.Tensor]) -> tuple[torch.Tensor, dict]:
        kd_cls = self.loss_cls_kl(student_logits, teacher_logits)
        kd_feat = self.loss_feature_cwd(self.adapters(student_feats), teacher_feats)
        total = self.weights.cls_weight * kd_cls + self.weights.feat_weight * kd_feat
        return total, {"kd_cls": float(kd_cls.detach()), "kd_feat": float(kd_feat.detach())}

    def loss_cls_kl(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """Per-class binary KL(teacher || student) of temperature-softened sigmoid scores, times T^2.

        Summed over classes, averaged over anchors weighted by the teacher's confidence so the many background
        anchors do not drown the objects.
        """
        t = self.weights.temperature
        p_t = torch.sigmoid(teacher_logits.float() / t)
        log_s = F.logsigmoid(student_logits.float() / t)
        log_s_neg = F.logsigmoid(-student_logits.float() / t)
        kl = p_t * (torch.log(p_t.clamp_min(1e-7)) - log_s) + (1 - p_t) * (torch.log((1 - p_t).clamp_min(1e-7)) - log_s_neg)
        weight = torch.sigmoid(teacher_logits.float()).amax(-1, keepdim=True)
        return (kl * weight).sum() / weight.sum().clamp_min(1.0) * t * t

    def loss_feature_cwd(self, student_feats: list[torch.Tensor], teacher_feats: list[torch.Tensor]) -> torch.Tensor:
        """Channel-wise distillation (Shu et al. 2021): KL between per-channel spatial softmax maps, times T^2."""
        t = self.weights.temperature
        total = student_feats[0].new_zeros(())
        for s, te in zip(student_feats, teacher_feats):
            b, c, h, w = te.shape
            log_p_s = F.log_softmax(s.float().reshape(b * c, h * w) / t, dim=1)
            p_t = F.softmax(te.float().reshape(b * c, h * w) / t, dim=1)
            total = total + F.kl_div(log_p_s, p_t, reduction="sum") * t * t / (b * c)
        return total / len(teacher_feats)
