"""Barlow Twins (Zbontar, Jing, Misra, LeCun & Deny, "Barlow Twins: Self-Supervised Learning via
Redundancy Reduction", ICML 2021)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from stopgrad import distributed as dist
from stopgrad.heads import ProjectorConfig, projector_from
from stopgrad.losses import barlow_twins_loss
from stopgrad.methods.base import Method, StepOutput, last_bn, register


@register("barlow")
class BarlowTwins(Method):
    """Cross-correlation of the two views' batch-standardised embeddings driven to the identity
    (eq. 1). Embeddings are gathered with gradients so the standardisation and ``C`` use the
    global batch, as the paper's all-reduce does.

    ``lambd`` weighs the off-diagonal term: 0.0051 in the paper (8192-d projector);
    ``lambd_mode="inverse-dim"`` uses ``1/D`` instead, the scaling suggested by Tsai et al. (2021)
    that keeps both terms balanced for small projectors. ``off_diagonal=False`` keeps only the
    invariance term (Jha et al. 2024, Fig. 5: it still does not collapse, thanks to BN).
    """

    description = "Barlow Twins: cross-correlation to identity (Zbontar et al. 2021)"
    max_views = 2  # two views exactly (checked when the config is read)

    @dataclass
    class Config(ProjectorConfig):
        lambd: float = 0.0051  # weight of the off-diagonal (redundancy) term (paper: 0.0051)
        lambd_mode: str = "fixed"  # fixed | inverse-dim (lambd = 1/D)
        off_diagonal: bool = True  # false keeps only the invariance term (Jha et al. Fig. 5)

        def validate(self) -> None:
            super().validate()
            if self.lambd_mode not in ("fixed", "inverse-dim"):
                raise ValueError(f"method.lambd_mode={self.lambd_mode!r}: expected fixed or inverse-dim")
            if self.lambd < 0:
                raise ValueError(f"method.lambd={self.lambd}: must be >= 0")

    def __init__(self, backbone: nn.Module, feat_dim: int, cfg: "BarlowTwins.Config") -> None:
        super().__init__(backbone, feat_dim, cfg)
        self.projector, self.proj_dim = projector_from(cfg, feat_dim)
        self.lambd = 1.0 / self.proj_dim if cfg.lambd_mode == "inverse-dim" else cfg.lambd

    def forward(self, views: list[torch.Tensor], step: int) -> StepOutput:
        if len(views) != 2:
            raise ValueError(f"barlow takes exactly 2 views, got {len(views)}")
        feats = [self.backbone(v) for v in views]
        za, zb = (self.projector(f) for f in feats)
        loss, on, off = barlow_twins_loss(dist.gather_with_grad(za), dist.gather_with_grad(zb), self.lambd,
                                          self.cfg.off_diagonal)
        return StepOutput(loss=loss, logs={"on_diag": on.detach(), "off_diag": off.detach()},
                          embeddings=[za.detach(), zb.detach()], features=feats[0].detach())

    def head_bn(self) -> nn.Module | None:
        return last_bn(self.projector)
