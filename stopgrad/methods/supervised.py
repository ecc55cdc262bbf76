"""The supervised ceiling: the same backbone, views and budget as the self-supervised methods, trained
with the labels (cross-entropy of a linear classifier on the backbone features of every view).

Not a self-supervised method: it is the reference a self-supervised run's frozen features are
measured against ("how much of what labels give did the views alone recover?"). The kNN and the
linear probe of its run evaluate its backbone features exactly as for every other method.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from stopgrad.methods.base import Method, StepOutput, register


@register("supervised")
class Supervised(Method):
    """Cross-entropy of ``Linear(feat_dim, C)`` on each view's backbone features, averaged over views."""

    description = "Supervised ceiling: cross-entropy with the labels, same backbone/views/budget (reference)"
    uses_labels = True

    @dataclass
    class Config:
        label_smoothing: float = 0.0  # cross-entropy label smoothing

        def validate(self) -> None:
            if not 0 <= self.label_smoothing < 1:
                raise ValueError(f"method.label_smoothing={self.label_smoothing}: must lie in [0, 1)")

    def __init__(self, backbone: nn.Module, feat_dim: int, cfg: "Supervised.Config", num_classes: int = 10) -> None:
        super().__init__(backbone, feat_dim, cfg)
        self.classifier = nn.Linear(feat_dim, num_classes)

    def forward(self, views: list[torch.Tensor], step: int, labels: torch.Tensor | None = None) -> StepOutput:
        if labels is None:
            raise ValueError("supervised needs the labels of the batch")
        feats = [self.backbone(v) for v in views]
        logits = [self.classifier(f).float() for f in feats]  # (B, C) each
        loss = torch.stack([F.cross_entropy(z, labels, ignore_index=-1, label_smoothing=self.cfg.label_smoothing)
                            for z in logits]).mean()
        with torch.no_grad():
            known = labels >= 0
            acc = (logits[0].argmax(1)[known] == labels[known]).float().mean() if known.any() else torch.tensor(0.0)
        return StepOutput(loss=loss, logs={"train_top1": acc}, features=feats[0].detach())
