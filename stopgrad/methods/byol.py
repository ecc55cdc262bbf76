"""BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020)."""

from __future__ import annotations

from dataclasses import dataclass

from stopgrad.methods.base import register
from stopgrad.methods.siamese import SiameseConfig, SiameseMethod


@register("byol")
class BYOL(SiameseMethod):
    """Online network + predictor regresses an EMA target's projection (eq. 2, symmetrised).

    The target momentum follows ``τ = 1 − (1 − τ_base)(cos(πk/K) + 1)/2`` from τ_base = 0.99 to 1
    (Sec. 3.3); heads are the paper's 4096-hidden, 256-d MLPs.
    """

    description = "BYOL: predictor + EMA target with cosine momentum (Grill et al. 2020)"

    @dataclass
    class Config(SiameseConfig):
        heads: str = "byol"
        loss: str = "mse"
        ema: tuple[float, float] = (0.99, 1.0)
