"""SwAV (Caron, Misra, Mairal, Goyal, Bojanowski & Joulin, "Unsupervised Learning of Visual
Features by Contrasting Cluster Assignments", NeurIPS 2020)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from stopgrad import distributed as dist
from stopgrad.heads import ProjectorConfig, projector_from
from stopgrad.losses import sinkhorn, swapped_prediction
from stopgrad.methods.base import Method, StepOutput, register


@register("swav")
class SwAV(Method):
    """Swapped prediction of Sinkhorn codes over prototypes (eq. 2-3).

    Codes come from the first two (global) views only and are computed without gradient by
    Sinkhorn-Knopp over the global batch (sums all-reduced across processes); every other view
    predicts them (multi-crop: any views after the first two). Prototypes are L2-normalised after
    every step; ``learnable_prototypes=False`` keeps them fixed at their random initialisation
    (Jha et al. 2024: SwAV still learns). ``freeze_prototypes_steps`` keeps them fixed at the start
    (the paper: first epoch). ``queue_length > 0`` stores past global-view embeddings for the
    Sinkhorn step, for small batches (the paper's queue, App. A).
    """

    description = "SwAV: swapped prediction of Sinkhorn-Knopp codes (Caron et al. 2020)"

    @dataclass
    class Config(ProjectorConfig):
        prototypes: int = 300  # K (3000 on ImageNet; fewer for 10-class data)
        temperature: float = 0.1  # softmax temperature of the swapped prediction
        sinkhorn_eps: float = 0.05  # entropic regularisation of Sinkhorn-Knopp
        sinkhorn_iters: int = 3  # Sinkhorn-Knopp iterations
        learnable_prototypes: bool = True  # false: fixed random prototypes (Jha et al.)
        freeze_prototypes_steps: int = 0  # prototypes get no gradient for this many steps
        queue_length: int = 0  # per global view; 0 = no queue
        queue_start_step: int = 0  # the queue joins the codes from this step

        def validate(self) -> None:
            super().validate()
            for k in ("prototypes", "sinkhorn_iters"):
                if getattr(self, k) < 1:
                    raise ValueError(f"method.{k}={getattr(self, k)}: must be >= 1")
            if self.temperature <= 0 or self.sinkhorn_eps <= 0:
                raise ValueError("method.temperature and method.sinkhorn_eps must be > 0")
            for k in ("queue_length", "queue_start_step", "freeze_prototypes_steps"):
                if getattr(self, k) < 0:
                    raise ValueError(f"method.{k}={getattr(self, k)}: must be >= 0")

    def __init__(self, backbone: nn.Module, feat_dim: int, cfg: "SwAV.Config") -> None:
        super().__init__(backbone, feat_dim, cfg)
        self.projector, self.proj_dim = projector_from(cfg, feat_dim)
        self.prototypes = nn.Linear(self.proj_dim, cfg.prototypes, bias=False)
        with torch.no_grad():
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        self.prototypes.weight.requires_grad_(cfg.learnable_prototypes)
        self.softmax_classes = cfg.prototypes
        self.register_buffer("queue", torch.zeros(2, cfg.queue_length, self.proj_dim), persistent=True)
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long), persistent=True)
        self._pending: list[torch.Tensor] | None = None  # this step's global-view embeddings, queued in after_step

    def codes(self, scores: torch.Tensor, view: int, z: torch.Tensor, step: int) -> torch.Tensor:
        """Sinkhorn codes of one global view's batch, using the queue when it is full enough."""
        use_queue = self.cfg.queue_length > 0 and step >= self.cfg.queue_start_step and int(self.queue_filled) > 0
        with torch.no_grad():
            if use_queue:
                past = self.queue[view, : int(self.queue_filled)]
                scores = torch.cat([scores.detach(), self.prototypes(past)])
            q = sinkhorn(scores.detach(), self.cfg.sinkhorn_eps, self.cfg.sinkhorn_iters, dist.all_reduce_sum)
        return q[: z.shape[0]]

    def forward(self, views: list[torch.Tensor], step: int) -> StepOutput:
        if len(views) < 2:
            raise ValueError(f"swav needs at least 2 views (2 global + optional local), got {len(views)}")
        feats = [self.backbone(v) for v in views]
        zs = [F.normalize(self.projector(f), dim=-1) for f in feats]  # (B, D) each
        scores = [self.prototypes(z) for z in zs]  # (B, K): cosines, prototypes being unit vectors
        loss = torch.zeros((), device=zs[0].device)
        n_terms = 0
        for i in range(2):
            q = self.codes(scores[i], i, zs[i], step)
            for j in range(len(views)):
                if j != i:
                    loss = loss + swapped_prediction(scores[j], q, self.cfg.temperature)
                    n_terms += 1
        loss = loss / n_terms
        if self.cfg.queue_length > 0:
            self._pending = [z.detach() for z in zs[:2]]
        return StepOutput(loss=loss, logs={"softmax_ce": loss.detach()},
                          embeddings=[z.detach() for z in zs[:2]], features=feats[0].detach())

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        if self.cfg.learnable_prototypes:
            w = self.prototypes.weight
            w.copy_(F.normalize(w, dim=1))
        if self._pending is not None:
            for v, z in enumerate(self._pending):
                self.queue[v] = torch.cat([z, self.queue[v]])[: self.cfg.queue_length]
            self.queue_filled.fill_(min(int(self.queue_filled) + self._pending[0].shape[0], self.cfg.queue_length))
            self._pending = None

    def before_optimizer_step(self, step: int) -> None:
        """Drop the prototypes' gradient while they are frozen (``freeze_prototypes_steps``)."""
        if step < self.cfg.freeze_prototypes_steps and self.prototypes.weight.grad is not None:
            self.prototypes.weight.grad = None
