"""SimCLR (Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of
Visual Representations", ICML 2020)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from stopgrad import distributed as dist
from stopgrad.heads import ProjectorConfig, projector_from
from stopgrad.losses import info_nce
from stopgrad.methods.base import Method, StepOutput, last_bn, register


@register("simclr")
class SimCLR(Method):
    """NT-Xent between two views with every other view of the global batch as a negative (eq. 1).

    The normalised projections are gathered across processes with a gather that keeps gradients
    (:func:`stopgrad.distributed.gather_with_grad`, a no-op in one process), so the negatives are
    the global batch's, as with the paper's "global BN" large-batch setting.
    """

    description = "SimCLR: NT-Xent / InfoNCE with in-batch negatives (Chen et al. 2020)"
    max_views = 2  # two views exactly (checked when the config is read)

    @dataclass
    class Config(ProjectorConfig):
        temperature: float = 0.5  # the paper's CIFAR-10 value (App. B.9); 0.1 on ImageNet

        def validate(self) -> None:
            super().validate()
            if self.temperature <= 0:
                raise ValueError(f"method.temperature={self.temperature}: must be > 0")

    def __init__(self, backbone: nn.Module, feat_dim: int, cfg: "SimCLR.Config") -> None:
        super().__init__(backbone, feat_dim, cfg)
        self.projector, self.proj_dim = projector_from(cfg, feat_dim)

    def forward(self, views: list[torch.Tensor], step: int) -> StepOutput:
        if len(views) != 2:
            raise ValueError(f"simclr takes exactly 2 views, got {len(views)}")
        feats = [self.backbone(v) for v in views]
        za, zb = (self.projector(f) for f in feats)  # (B, D)
        a, b = F.normalize(za.float(), dim=-1), F.normalize(zb.float(), dim=-1)
        loss = info_nce(za, zb, self.cfg.temperature, all_a=dist.gather_with_grad(a),
                        all_b=dist.gather_with_grad(b), offset=dist.rank() * za.shape[0])
        return StepOutput(loss=loss, embeddings=[za.detach(), zb.detach()], features=feats[0].detach())

    def head_bn(self) -> nn.Module | None:
        return last_bn(self.projector)
