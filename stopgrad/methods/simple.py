"""The "Simple" objective of Jha, Blaschko, Asano & Tuytelaars, "The common stability mechanism
behind most self-supervised learning approaches" (arXiv 2402.14957), eq. 32."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from stopgrad.distributed import gather_with_grad
from stopgrad.heads import ProjectorConfig, projector_from
from stopgrad.losses import simple_loss
from stopgrad.methods.base import Method, StepOutput, last_bn, register


@register("simple")
class Simple(Method):
    """Invariance loss plus a penalty on the center vector: ``0.5·(L − lam·‖s‖)``, ``lam = −1``.

    No predictor, no stop-gradient and no target network: both views get gradients, and collapse
    is prevented only by the ``‖s‖`` term (Sec. 3.1, eq. 32; the constrained problem of eq. 3).
    ``s`` is the mean of the L2-normalised projector outputs of both views over the global batch
    (gathered with gradients under DDP, a no-op in one process).
    """

    description = "Simple: invariance loss + center-vector penalty, 0.5(L - lam·||s||) (Jha et al. 2024)"
    max_views = 2  # two views exactly (checked when the config is read)

    @dataclass
    class Config(ProjectorConfig):  # the heads preset's projector shape (its predictor is unused)
        lam: float = -1.0  # Lagrange multiplier of eq. 3; -1 in the paper

    def __init__(self, backbone: nn.Module, feat_dim: int, cfg: "Simple.Config") -> None:
        super().__init__(backbone, feat_dim, cfg)
        self.projector, self.proj_dim = projector_from(cfg, feat_dim)

    def forward(self, views: list[torch.Tensor], step: int) -> StepOutput:
        if len(views) != 2:
            raise ValueError(f"simple takes exactly 2 views, got {len(views)}")
        feats = [self.backbone(v) for v in views]
        za, zb = (self.projector(f) for f in feats)  # (B, D) each
        center = torch.cat([gather_with_grad(F.normalize(z.float(), dim=-1)) for z in (za, zb)]).mean(0)
        loss, inv, s_norm = simple_loss(za, zb, self.cfg.lam, center=center)
        return StepOutput(loss=loss, logs={"invariance": inv.detach(), "center_penalty": s_norm.detach()},
                          embeddings=[za.detach(), zb.detach()], features=feats[0].detach())

    def head_bn(self) -> nn.Module | None:
        return last_bn(self.projector)
