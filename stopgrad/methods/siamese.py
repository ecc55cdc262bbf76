"""The predictor + stop-gradient family shared by SimSiam, BYOL and the closed-form predictors.

``loss = mean_{i≠j, j global} ℓ(h(z_i), sg(z'_j))`` where ``z = g(f(x))`` is the online projector output,
``h`` the predictor and ``z'`` either the detached online output (SimSiam, Chen & He 2021, eq. 3-4)
or the output of an EMA target network (BYOL, Grill et al. 2020, eq. 2), and ``j`` runs over the
global views only (with two views: both; multi-crop's smaller local crops are never targets). An EMA momentum of 0
gives the SimSiam variant of any head. Ablations are plain config values: ``predictor="none"``,
``stop_grad=False``, ``pred_lr_mult``, ``fixed_pred_lr``, ``pred_weight_decay`` and ``ema``.

The predictor ``h`` is one option of the family (:data:`PREDICTORS`, heads in
:mod:`stopgrad.predictors`): the 2-layer MLP, none, learned linear heads (random or identity
initialised, fixed diagonal, symmetric; Wen & Li 2022), the frozen identity, and the closed forms
DirectPred / DirectCopy / DirectSet(alpha) (Tian et al. 2021; Wang et al. 2021), which
:meth:`SiameseMethod.after_step` overwrites every ``pred_freq`` steps from an EMA of the
correlation of the online projector outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from stopgrad.heads import check_sizes, get_head_preset, mlp
from stopgrad.losses import LOSSES
from stopgrad.methods.base import Method, StepOutput, cosine_momentum, last_bn, make_target
from stopgrad.predictors import (COPY_NORMS, ClosedFormPredictor, CorrelationTracker, FixedDiagonalPredictor,
                                 LinearHead, LinearPredictor, SymmetricPredictor, directcopy_weight,
                                 directpred_weight, directset_weight)

CLOSED_FORMS = ("directpred", "directcopy", "directset")
LINEAR_HEADS = ("linear", "identity", "fixed-diagonal", "symmetric", "frozen-identity") + CLOSED_FORMS
PREDICTORS = ("mlp", "none") + LINEAR_HEADS
# eps of each closed form when pred_eps is None: DirectPred reference code (luckmatters, dyn_eps=0.01);
# DirectCopy/DirectSet: 0.25, the public re-implementations' value with the spectral normalisation.
DEFAULT_PRED_EPS = {"directpred": 0.01, "directcopy": 0.25, "directset": 0.25}


@dataclass
class SiameseConfig:
    """Options common to every predictor/stop-gradient method."""

    heads: str = "simsiam-cifar"  # head sizes: simsiam-imagenet | simsiam-cifar | byol | directpred | small
    proj_hidden: int | None = None  # overrides of the preset's sizes
    proj_dim: int | None = None  # projector output width (None: the preset's)
    proj_layers: int | None = None  # projector layers (None: the preset's)
    pred_hidden: int | None = None  # MLP predictor's hidden width (None: the preset's)
    predictor: str = "mlp"  # PREDICTORS: mlp | none | linear | identity | fixed-diagonal | symmetric |
    #                         frozen-identity | directpred | directcopy | directset
    stop_grad: bool = True  # stop-gradient on the target branch (false: SimSiam's collapse ablation)
    loss: str = "cosine"  # cosine (SimSiam eq. 1) | mse (BYOL eq. 2)
    pred_lr_mult: float = 1.0  # predictor lr as a multiple of the base lr (Jha et al.: 1%, 10%, 100%)
    fixed_pred_lr: bool = False  # keep the predictor's lr constant (SimSiam Sec. 4.2)
    pred_weight_decay: float | None = None  # None: the optimizer's weight decay
    ema: tuple[float, float] = (0.0, 0.0)  # target momentum (start, end), cosine; (0, 0) = no target
    # learned linear heads
    pred_init: str = "random"  # linear | symmetric: random | identity ("identity" = linear + identity init)
    track_correlation: bool = False  # keep the correlation EMA for a learned linear head (diagnostics)
    # closed forms (DirectPred reference: rho 0.3, eps 0.01, every step)
    corr_rho: float = 0.3  # F ← rho·F + (1 − rho)·mean(f fᵀ)
    corr_zero_mean: bool = False  # covariance F − m mᵀ instead of the correlation
    pred_eps: float | None = None  # ridge; None: DEFAULT_PRED_EPS of the chosen form
    pred_freq: int = 1  # overwrite W every pred_freq steps
    alpha: float = 1.0  # DirectSet(alpha) exponent (1/2 = DirectPred, 1 = DirectCopy)
    copy_norm: str = "spectral"  # DirectCopy normalisation: spectral | frobenius | none
    power_iters: int = 5  # power iterations of the spectral normalisation
    pred_train_between: bool = False  # W also takes gradient steps between overwrites (reference code)

    def validate(self) -> None:
        get_head_preset(self.heads)
        check_sizes(self, "proj_hidden", "proj_dim", "proj_layers", "pred_hidden")
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}: expected one of {list(LOSSES)}")
        if not all(0.0 <= m <= 1.0 for m in self.ema):
            raise ValueError(f"ema={self.ema!r}: momenta must lie in [0, 1]")
        if not self.stop_grad and self.uses_target:
            raise ValueError("stop_grad=False needs ema=[0, 0]: an EMA target never gets gradients")
        if self.pred_lr_mult <= 0:
            raise ValueError(f"pred_lr_mult={self.pred_lr_mult}: must be > 0")
        if self.predictor not in PREDICTORS:
            raise ValueError(f"predictor={self.predictor!r}: expected one of {list(PREDICTORS)}")
        if self.pred_init not in ("random", "identity"):
            raise ValueError(f"pred_init={self.pred_init!r}: expected 'random' or 'identity'")
        if not 0.0 <= self.corr_rho < 1.0:
            raise ValueError(f"corr_rho={self.corr_rho}: must lie in [0, 1)")
        if self.pred_freq < 1:
            raise ValueError(f"pred_freq={self.pred_freq}: must be >= 1 (overwrite W every pred_freq steps)")
        if self.alpha <= 0:
            raise ValueError(f"alpha={self.alpha}: the DirectSet exponent must be > 0")
        if self.copy_norm not in COPY_NORMS:
            raise ValueError(f"copy_norm={self.copy_norm!r}: expected one of {list(COPY_NORMS)}")
        if self.power_iters < 1:
            raise ValueError(f"power_iters={self.power_iters}: must be >= 1")
        if self.pred_eps is not None and not math.isfinite(self.pred_eps):
            raise ValueError(f"pred_eps={self.pred_eps}: must be finite")
        if self.predictor == "directcopy" and self.eps < 0:
            raise ValueError(f"pred_eps={self.pred_eps}: DirectCopy's ridge must be >= 0 (no eigenvalue clamp)")
        if self.pred_train_between and self.predictor not in CLOSED_FORMS:
            raise ValueError(f"pred_train_between=True needs a closed-form predictor {list(CLOSED_FORMS)}, "
                             f"got predictor={self.predictor!r}")
        if self.track_correlation and self.predictor not in LINEAR_HEADS:
            raise ValueError(f"track_correlation=True needs a linear predictor {list(LINEAR_HEADS)}, "
                             f"got predictor={self.predictor!r}")

    @property
    def uses_target(self) -> bool:
        return max(self.ema) > 0.0

    @property
    def closed_form(self) -> bool:
        return self.predictor in CLOSED_FORMS

    @property
    def uses_tracker(self) -> bool:
        return self.closed_form or self.track_correlation

    @property
    def eps(self) -> float:
        """The ridge of the closed form: ``pred_eps`` or the form's reference default."""
        return self.pred_eps if self.pred_eps is not None else DEFAULT_PRED_EPS.get(self.predictor, 0.0)


def global_view_count(views: list[torch.Tensor]) -> int:
    """How many leading views share the first view's size: the global views. Multi-crop's local crops
    (smaller, after them; Caron et al. 2020, Sec. 3.2) only predict the global views' targets, as in
    SwAV's and DINO's multi-crop losses."""
    n = 1
    while n < len(views) and views[n].shape[-2:] == views[0].shape[-2:]:
        n += 1
    return n


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
        self.tracker = (CorrelationTracker(self.proj_dim, cfg.corr_rho, cfg.corr_zero_mean)
                        if cfg.uses_tracker else None)
        self._last_embeddings: list[torch.Tensor] | None = None  # for the tracker, set in forward
        self.loss_fn = LOSSES[cfg.loss]
        self.target_backbone = make_target(backbone) if cfg.uses_target else None
        self.target_projector = make_target(self.projector) if cfg.uses_target else None

    def build_predictor(self, hidden: int) -> nn.Module:
        """The head ``h`` named by ``cfg.predictor`` (see :data:`PREDICTORS`)."""
        kind, d = self.cfg.predictor, self.proj_dim
        if kind == "mlp":
            return mlp(d, hidden, d, num_layers=2)
        if kind == "none":
            return nn.Identity()
        if kind == "linear":
            return LinearPredictor(d, init=self.cfg.pred_init)
        if kind == "identity":
            return LinearPredictor(d, init="identity")
        if kind == "fixed-diagonal":
            return FixedDiagonalPredictor(d)
        if kind == "symmetric":
            return SymmetricPredictor(d, init=self.cfg.pred_init)
        if kind == "frozen-identity":
            return ClosedFormPredictor(d, trainable=False)  # never overwritten
        if kind in CLOSED_FORMS:
            return ClosedFormPredictor(d, trainable=self.cfg.pred_train_between)
        raise ValueError(f"method.predictor={self.cfg.predictor!r}: expected one of {PREDICTORS}")

    def targets(self, views: list[torch.Tensor], zs: list[torch.Tensor]) -> list[torch.Tensor]:
        """The stop-gradient branch ``sg(z')`` of the given (global) views."""
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
        n_global = global_view_count(views)
        ts = self.targets(views[:n_global], zs[:n_global])
        # every view predicts every other global view: multi-crop's small local crops are never targets
        pairs = [(i, j) for i in range(len(views)) for j in range(n_global) if i != j]
        loss = sum(self.loss_fn(ps[i], ts[j]) for i, j in pairs) / len(pairs)
        embeddings = [z.detach() for z in zs]
        if self.tracker is not None:
            self._last_embeddings = embeddings[:n_global]  # folded into the correlation EMA in after_step
        return StepOutput(loss=loss, embeddings=embeddings, features=feats[0].detach())

    def closed_form_weight(self) -> torch.Tensor:
        """``W`` of the configured closed form from the tracked correlation (see stopgrad.predictors)."""
        cfg, F = self.cfg, self.tracker.correlation()
        if cfg.predictor == "directpred":
            return directpred_weight(F, cfg.eps)
        if cfg.predictor == "directset":
            return directset_weight(F, cfg.alpha, cfg.eps)
        return directcopy_weight(F, cfg.eps, cfg.copy_norm, cfg.power_iters)

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """Fold the last forward's projector outputs into the correlation EMA, then (closed forms)
        overwrite ``W`` every ``pred_freq`` steps, after the optimizer step as in the DirectPred
        reference (so step ``t + 1`` uses the ``F`` that includes step ``t``)."""
        if self.tracker is None or self._last_embeddings is None:
            return
        self.tracker.update(self._last_embeddings)
        self._last_embeddings = None
        if self.cfg.closed_form and step % self.cfg.pred_freq == 0:
            self.predictor.set_weight(self.closed_form_weight())

    def predictor_matrices(self) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """``(W, F)`` for linear and closed-form heads (``F`` when a correlation is tracked)."""
        if not isinstance(self.predictor, LinearHead):
            return None
        W = self.predictor.matrix().detach().float()
        F = self.tracker.correlation() if self.tracker is not None and self.tracker.count > 0 else None
        return W, F

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
        return last_bn(self.projector)

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        if self.target_backbone is None:
            return []
        return [(self.backbone, self.target_backbone), (self.projector, self.target_projector)]

    def ema_momentum(self, step: int, total_steps: int) -> float:
        return cosine_momentum(self.cfg.ema[0], self.cfg.ema[1], step, total_steps)
