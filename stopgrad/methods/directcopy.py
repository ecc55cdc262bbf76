"""DirectCopy (Wang, Chen, Du, Tian, "Towards Demystifying Representation Learning with
Non-contrastive Self-supervision", arXiv 2110.04947, 2021)."""

from __future__ import annotations

from dataclasses import dataclass

from stopgrad.methods.base import register
from stopgrad.methods.siamese import SiameseConfig, SiameseMethod


@register("directcopy")
class DirectCopy(SiameseMethod):
    """DirectPred without the eigen-decomposition: ``W = F̂ / norm(F̂) + eps·I``
    (:func:`directcopy_weight`).

    Default normalisation (``copy_norm="spectral"``): the largest eigenvalue of ``F̂`` by 5 power
    iterations, with eps = 0.25 (``pred_eps=None`` picks it) -- the public re-implementations'
    choice, which makes DirectCopy DirectSet(alpha = 1). ``copy_norm`` also offers ``frobenius``
    and ``none`` (``F̂ + eps·I``, the luckmatters reference's ``predictor_reg=directcopy``). Every
    other default is DirectPred's reference setting (rho = 0.3, every step, constant EMA 0.996,
    projector 512 → 128). ``ema=[0, 0]`` gives the SimSiam-style variant.
    """

    description = "DirectCopy: predictor = normalised correlation EMA + eps·I, no eigh (Wang et al. 2021)"

    @dataclass
    class Config(SiameseConfig):
        heads: str = "directpred"
        predictor: str = "directcopy"
        loss: str = "mse"
        ema: tuple[float, float] = (0.996, 0.996)
        corr_rho: float = 0.3
        pred_freq: int = 1
        copy_norm: str = "spectral"
        power_iters: int = 5
