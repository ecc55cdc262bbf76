"""DINO (Caron, Touvron, Misra, Jégou, Mairal, Bojanowski & Joulin, "Emerging Properties in
Self-Supervised Vision Transformers", ICCV 2021)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from stopgrad import distributed as dist
from stopgrad.heads import check_sizes, get_head_preset, mlp
from stopgrad.losses import dino_loss
from stopgrad.methods.base import Method, StepOutput, cosine_momentum, make_target, register


class DINOHead(nn.Module):
    """MLP → L2-normalised bottleneck → weight-normalised linear layer to ``out_dim`` (Sec. 3.1,
    the reference head with ``norm_last_layer``: the last layer's rows have unit norm)."""

    def __init__(self, in_dim: int, hidden: int, bottleneck: int, out_dim: int, layers: int = 3) -> None:
        super().__init__()
        self.mlp = mlp(in_dim, hidden, bottleneck, num_layers=layers)
        self.last = nn.Linear(bottleneck, out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.normalize(self.mlp(x), dim=-1)
        return z @ F.normalize(self.last.weight, dim=1).T  # (B, out_dim)


def teacher_temperature(step: int, start: float, end: float, warmup_steps: int) -> float:
    """Linear warm-up of the teacher temperature from ``start`` to ``end`` (Sec. 3.1, App.)."""
    if warmup_steps <= 0 or step >= warmup_steps:
        return end
    return start + (end - start) * step / warmup_steps


@register("dino")
class DINO(Method):
    """Student/teacher self-distillation with a centred, sharpened EMA teacher (eq. 1, 4).

    The teacher (backbone + head) is an EMA of the student with cosine momentum ``ema``; its
    outputs are centred by ``c`` and sharpened by the teacher temperature, whose warm-up is a pure
    function of the step. ``c ← m·c + (1 − m)·mean(teacher outputs)`` is updated in
    :meth:`after_step` (the mean all-reduced across processes: a no-op alone), never inside the
    loss. ``centering=False`` removes it (Jha et al. 2024, App. B.2: DINO then collapses).
    Multi-crop: the teacher sees the first two views, the student every view.
    """

    description = "DINO: self-distillation with centering and sharpening (Caron et al. 2021)"

    @dataclass
    class Config:
        heads: str = "small"  # hidden width of the head's MLP from this preset
        proj_hidden: int | None = None  # head hidden width (None: the preset's)
        bottleneck: int = 256  # width before the weight-normalised last layer
        out_dim: int = 1024  # K (65536 on ImageNet)
        student_temp: float = 0.1  # student softmax temperature
        teacher_temp: float = 0.04  # teacher temperature after the warm-up
        teacher_temp_start: float = 0.04  # teacher temperature at step 0
        teacher_temp_warmup_steps: int = 0  # linear warm-up of the teacher temperature
        centering: bool = True  # subtract the teacher center (false: DINO collapses, Jha et al. App. B.2)
        center_momentum: float = 0.9  # EMA of the center
        ema: tuple[float, float] = (0.996, 1.0)  # teacher momentum (start, end), cosine

        def validate(self) -> None:
            get_head_preset(self.heads)
            check_sizes(self, "proj_hidden", "bottleneck", "out_dim")
            if self.teacher_temp_warmup_steps < 0:
                raise ValueError(f"method.teacher_temp_warmup_steps={self.teacher_temp_warmup_steps}: must be >= 0")
            for k in ("student_temp", "teacher_temp", "teacher_temp_start"):
                if getattr(self, k) <= 0:
                    raise ValueError(f"method.{k}={getattr(self, k)}: must be > 0")
            if not 0 <= self.center_momentum < 1:
                raise ValueError(f"method.center_momentum={self.center_momentum}: must be in [0, 1)")

    def __init__(self, backbone: nn.Module, feat_dim: int, cfg: "DINO.Config") -> None:
        super().__init__(backbone, feat_dim, cfg)
        hidden = cfg.proj_hidden or get_head_preset(cfg.heads).proj_hidden
        self.head = DINOHead(feat_dim, hidden, cfg.bottleneck, cfg.out_dim)
        self.target_backbone = make_target(backbone)
        self.target_head = make_target(self.head)
        self.register_buffer("center", torch.zeros(cfg.out_dim))
        self.softmax_classes = cfg.out_dim
        self._teacher_mean: torch.Tensor | None = None

    def forward(self, views: list[torch.Tensor], step: int) -> StepOutput:
        if len(views) < 2:
            raise ValueError(f"dino needs at least 2 views (2 global + optional local), got {len(views)}")
        feats = [self.backbone(v) for v in views]
        student = [self.head(f) for f in feats]
        with torch.no_grad():  # the teacher never receives a gradient
            teacher = [self.target_head(self.target_backbone(v)) for v in views[:2]]
        c = self.center if self.cfg.centering else None
        t_temp = teacher_temperature(step, self.cfg.teacher_temp_start, self.cfg.teacher_temp,
                                     self.cfg.teacher_temp_warmup_steps)
        terms = [dino_loss(student[j], teacher[i], c, self.cfg.student_temp, t_temp)
                 for i in range(2) for j in range(len(views)) if j != i]
        loss = sum(terms) / len(terms)
        self._teacher_mean = torch.cat(teacher).float().mean(0)
        return StepOutput(loss=loss, logs={"softmax_ce": loss.detach(), "teacher_temp": t_temp},
                          embeddings=[s.detach() for s in student[:2]], features=feats[0].detach())

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.backbone, self.target_backbone), (self.head, self.target_head)]

    def ema_momentum(self, step: int, total_steps: int) -> float:
        return cosine_momentum(self.cfg.ema[0], self.cfg.ema[1], step, total_steps)

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        if self.cfg.centering and self._teacher_mean is not None:
            batch_center = dist.all_reduce_mean(self._teacher_mean)
            self.center.mul_(self.cfg.center_momentum).add_(batch_center, alpha=1 - self.cfg.center_momentum)
        self._teacher_mean = None
