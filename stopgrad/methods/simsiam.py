"""SimSiam (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021)."""

from __future__ import annotations

from dataclasses import dataclass

from stopgrad.methods.base import register
from stopgrad.methods.siamese import SiameseConfig, SiameseMethod


@register("simsiam")
class SimSiam(SiameseMethod):
    """Symmetric negative cosine between predictor output and the detached other view (eq. 4).

    Defaults follow the paper's CIFAR recipe (App. D): 2-layer 2048-d projector with output BN,
    2048→512→2048 predictor whose learning rate is kept fixed (Sec. 4.2, "fix lr of predictor").
    """

    description = "SimSiam: predictor + stop-gradient, no target network (Chen & He 2021)"

    @dataclass
    class Config(SiameseConfig):
        heads: str = "simsiam-cifar"
        fixed_pred_lr: bool = True
