"""The predictor + stop-gradient family shared by SimSiam, BYOL and the closed-form predictors.

``loss = mean_{i≠j} ℓ(h(z_i), sg(z'_j))`` where ``z = g(f(x))`` is the online projector output,
``h`` the predictor and ``z'`` either the detached online output (SimSiam, Chen & He 2021, eq. 3-4)
or the output of an EMA target network (BYOL, Grill et al. 2020, eq. 2). An EMA momentum of 0
gives the SimSiam variant of any head. Ablations are plain config values: ``predictor="none"``,
``stop_grad=False``, ``pred_lr_mult``, ``fixed_pred_lr``, ``pred_weight_decay`` and ``ema``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from stopgrad.heads import get_head_preset, mlp
from stopgrad.losses import LOSSES
from stopgrad.methods.base import Method, StepOutput, cosine_momentum, make_target

PREDICTORS = ("mlp", "none")


@dataclass
class SiameseConfig:
    """Options common to every predictor/stop-gradient method."""

    heads: str = "simsiam-cifar"  # stopgrad.heads.HEAD_PRESETS
    proj_hidden: int | None = None  # overrides of the preset's sizes
    proj_dim: int | None = None
    proj_layers: int | None = None
    pred_hidden: int | None = None
    predictor: str = "mlp"  # mlp | none
    stop_grad: bool = True
    loss: str = "cosine"  # cosine (SimSiam eq. 1) | mse (BYOL eq. 2)
    pred_lr_mult: float = 1.0
    fixed_pred_lr: bool = False  # keep the predictor's lr constant (SimSiam Sec. 4.2)
    pred_weight_decay: float | None = None  # None: the optimizer's weight decay
    ema: tuple[float, float] = (0.0, 0.0)  # target momentum (start, end), cosine; (0, 0) = no target

    def validate(self) -> None:
        get_head_preset(self.heads)
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}: expected one of {list(LOSSES)}")
        if not all(0.0 <= m <= 1.0 for m in self.ema):
            raise ValueError(f"ema={self.ema!r}: momenta must lie in [0, 1]")
        if not self.stop_grad and self.uses_target:
            raise ValueError("stop_grad=False needs ema=[0, 0]: an EMA target never gets gradients")
        if self.pred_lr_mult <= 0:
            raise ValueError(f"pred_lr_mult={self.pred_lr_mult}: must be > 0")

    @property
    def uses_target(self) -> bool:
        return max(self.ema) > 0.0


class SiameseMethod(Method):
    """Online backbone + projector + predictor, optionally an EMA target (see module docstring)."""

    Config = SiameseConfig

    def __init__(self, backbone: nn.Module, feat_dim: int, cfg: SiameseConfig) -> None:
        super().__init__(backbone, feat_dim, cfg)
        preset = get_head_preset(cfg.heads)
        self.proj_dim = cfg.proj_dim or preset.proj_dim
        self.projector = mlp(feat_dim, cfg.proj_hidden or preset.proj_hidden, self.proj_dim,
                             cfg.proj_layers or preset.proj_layers, last_bn=preset.proj_last_bn,
                             last_bn_affine=False)
        self.predictor = self.build_predictor(cfg.pred_hidden or preset.pred_hidden)
        self.loss_fn = LOSSES[cfg.loss]
        self.target_backbone = make_target(backbone) if cfg.uses_target else None
        self.target_projector = make_target(self.projector) if cfg.uses_target else None

    def build_predictor(self, hidden: int) -> nn.Module:
        """The head ``h``; subclasses add linear and closed-form predictors."""
        if self.cfg.predictor == "mlp":
            return mlp(self.proj_dim, hidden, self.proj_dim, num_layers=2)
        if self.cfg.predictor == "none":
            return nn.Identity()
        raise ValueError(f"method.predictor={self.cfg.predictor!r}: expected one of {PREDICTORS}")

    def targets(self, views: list[torch.Tensor], zs: list[torch.Tensor]) -> list[torch.Tensor]:
        """The stop-gradient branch ``sg(z')``."""
        if self.target_backbone is not None:
            with torch.no_grad():  # stop-gradient: the EMA target never receives a gradient
                return [self.target_projector(self.target_backbone(v)) for v in views]
        if self.cfg.stop_grad:
            return [z.detach() for z in zs]  # stop-gradient (SimSiam eq. 3)
        return zs

    def forward(self, views: list[torch.Tensor], step: int) -> StepOutput:
        feats = [self.backbone(v) for v in views]  # BN statistics per view, as in the papers
        zs = [self.projector(f) for f in feats]  # (B, D) each
        ps = [self.predictor(z) for z in zs]  # (B, D) each
        ts = self.targets(views, zs)
        pairs = [(i, j) for i in range(len(views)) for j in range(len(views)) if i != j]
        loss = sum(self.loss_fn(ps[i], ts[j]) for i, j in pairs) / len(pairs)
        return StepOutput(loss=loss, embeddings=[z.detach() for z in zs], features=feats[0].detach())

    def param_groups(self) -> list[dict]:
        pred = [p for p in self.predictor.parameters() if p.requires_grad]
        pred_ids = {id(p) for p in pred}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in pred_ids]
        groups = [{"name": "encoder", "params": rest}]
        if pred:
            group = {"name": "predictor", "params": pred, "lr_mult": self.cfg.pred_lr_mult,
                     "fixed_lr": self.cfg.fixed_pred_lr}
            if self.cfg.pred_weight_decay is not None:
                group["weight_decay"] = self.cfg.pred_weight_decay
            groups.append(group)
        return groups

    def head_bn(self) -> nn.Module | None:
        last = self.projector[-1]
        return last if isinstance(last, nn.BatchNorm1d) else None

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        if self.target_backbone is None:
            return []
        return [(self.backbone, self.target_backbone), (self.projector, self.target_projector)]

    def ema_momentum(self, step: int, total_steps: int) -> float:
        return cosine_momentum(self.cfg.ema[0], self.cfg.ema[1], step, total_steps)
