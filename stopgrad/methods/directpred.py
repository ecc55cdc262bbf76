"""DirectPred (Tian, Chen, Ganguli, "Understanding self-supervised learning dynamics without
contrastive pairs", ICML 2021)."""

from __future__ import annotations

from dataclasses import dataclass

from stopgrad.methods.base import register
from stopgrad.methods.siamese import SiameseConfig, SiameseMethod


@register("directpred")
class DirectPred(SiameseMethod):
    """BYOL with a linear predictor set directly from the correlation of the projector outputs:
    ``W = U diag(sqrt(s/s_max) + eps) Uᵀ`` for ``F̂ = U diag(s) Uᵀ`` (:func:`directpred_weight`).

    Defaults follow the reference (facebookresearch/luckmatters ``ssl/``, STL-10/CIFAR): projector
    512 hidden → 128; ``F̂`` EMA with rho = 0.3; eps = 0.01 (``pred_eps=None`` picks it),
    eigenvalues clamped at 1e-4; W set after every step; constant EMA momentum 0.996 (``trainer.m``,
    no schedule in the reference); BYOL's normalised MSE. ``ema=[0, 0]`` gives the SimSiam-style
    variant.
    """

    description = "DirectPred: linear predictor from the eigen-decomposed correlation EMA (Tian et al. 2021)"

    @dataclass
    class Config(SiameseConfig):
        heads: str = "directpred"
        predictor: str = "directpred"
        loss: str = "mse"
        ema: tuple[float, float] = (0.996, 0.996)
        corr_rho: float = 0.3
        pred_freq: int = 1
