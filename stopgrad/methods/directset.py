"""DirectSet(alpha) (Wang, Chen, Du, Tian, arXiv 2110.04947, 2021): the family between DirectPred
(alpha = 1/2) and DirectCopy (alpha = 1)."""

from __future__ import annotations

from dataclasses import dataclass

from stopgrad.methods.base import register
from stopgrad.methods.siamese import SiameseConfig, SiameseMethod


@register("directset")
class DirectSet(SiameseMethod):
    """Linear predictor ``W = U diag((s/s_max)^alpha + eps) Uᵀ`` from the eigen-decomposed
    correlation EMA (:func:`directset_weight`).

    Default alpha = 1 with eps = 0.25: DirectCopy's spectral form computed exactly (by ``eigh``
    instead of power iterations); ``alpha=0.5 pred_eps=0.01`` is DirectPred. Other defaults are
    DirectPred's reference setting (rho = 0.3, every step, EMA 0.996, projector 512 → 128).
    ``ema=[0, 0]`` gives the SimSiam-style variant.
    """

    description = "DirectSet(alpha): predictor U diag((s/s_max)^alpha + eps) Uᵀ (Wang et al. 2021)"

    @dataclass
    class Config(SiameseConfig):
        heads: str = "directpred"
        predictor: str = "directset"
        loss: str = "mse"
        ema: tuple[float, float] = (0.996, 0.996)
        corr_rho: float = 0.3
        pred_freq: int = 1
        alpha: float = 1.0
