"""The method interface every self-supervised method implements, and the method registry.

A method owns its backbone, heads and loss. The shared training loop (``stopgrad.train``) calls
``forward(views, step)`` for the loss, ``param_groups()`` for optimizer groups, ``ema_pairs()`` and
``ema_momentum`` for EMA targets, and ``after_step()`` for hooks such as closed-form predictors.
"""

from __future__ import annotations

import copy
import difflib
import math
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import torch
from torch import nn

METHODS: dict[str, type["Method"]] = {}


def register(name: str) -> Callable[[type["Method"]], type["Method"]]:
    """Class decorator adding a method to :data:`METHODS` under ``name``."""

    def wrap(cls: type[Method]) -> type[Method]:
        if name in METHODS:
            raise ValueError(f"method {name!r} registered twice")
        cls.name = name
        METHODS[name] = cls
        return cls

    return wrap


def get_method(name: str) -> type["Method"]:
    """Look a method up by name; the error lists the known ones."""
    if name not in METHODS:
        close = difflib.get_close_matches(name, list(METHODS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown method {name!r}{hint} (known: {', '.join(sorted(METHODS))})")
    return METHODS[name]


@dataclass
class StepOutput:
    """What one forward pass of a method returns.

    Attributes:
        loss: scalar training loss.
        logs: extra scalars to log (already detached Python floats or 0-d tensors).
        embeddings: per-view projector outputs ``[(B, D), ...]`` (detached) for diagnostics.
        features: backbone features of the first view ``(B, F)`` (detached) for diagnostics.
    """

    loss: torch.Tensor
    logs: dict[str, torch.Tensor | float] = field(default_factory=dict)
    embeddings: list[torch.Tensor] = field(default_factory=list)
    features: torch.Tensor | None = None


class Method(nn.Module):
    """Base class: subclasses define a nested ``Config`` dataclass and ``forward``."""

    name: ClassVar[str] = "?"
    description: ClassVar[str] = ""
    max_views: ClassVar[int | None] = None  # most views (global + local) a step takes; None = any
    uses_labels: ClassVar[bool] = False  # forward(views, step, labels) and __init__(..., num_classes=C)

    @dataclass
    class Config:
        pass

    def __init__(self, backbone: nn.Module, feat_dim: int, cfg: "Method.Config") -> None:
        super().__init__()
        self.backbone = backbone
        self.feat_dim = feat_dim
        self.cfg = cfg

    def forward(self, views: list[torch.Tensor], step: int) -> StepOutput:  # pragma: no cover
        raise NotImplementedError

    def param_groups(self) -> list[dict]:
        """Optimizer groups: dicts with ``params`` and optional ``lr_mult``, ``fixed_lr``,
        ``weight_decay``. The default is one group of every trainable parameter."""
        return [{"name": "all", "params": [p for p in self.parameters() if p.requires_grad]}]

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(online, target) module pairs the loop updates with :func:`ema_update`."""
        return []

    def ema_momentum(self, step: int, total_steps: int) -> float:
        """EMA momentum at ``step``; only used when :meth:`ema_pairs` is non-empty."""
        return 0.0

    def before_optimizer_step(self, step: int) -> None:
        """Hook run after backward, before the optimizer step (e.g. SwAV drops the prototypes'
        gradient while they are frozen). Under DDP the gradients are already all-reduced here."""

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """Hook run after each optimizer step and EMA update."""

    def predictor_matrices(self) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """``(W, F)`` for methods with a linear predictor W and a tracked correlation F (or None),
        so the loop can log predictor dynamics; None for the rest."""
        return None

    def head_bn(self) -> nn.Module | None:
        """The BatchNorm at the output of the projector, if any, for the center vector before and
        after it (Jha et al. 2024, Fig. 5)."""
        return None


def last_bn(projector: nn.Module) -> nn.Module | None:
    """The projector's last layer when it is a BatchNorm (plain or :class:`~stopgrad.sync_bn.GlobalBatchNorm`)."""
    last = projector[-1] if isinstance(projector, nn.Sequential) and len(projector) else None
    return last if isinstance(last, nn.modules.batchnorm._BatchNorm) else None


def make_target(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` for an EMA target: no parameter of it ever gets a gradient."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``θ_target ← m·θ_target + (1 − m)·θ_online`` (BYOL, Grill et al. 2020, Sec. 3.1).

    Buffers (BN running statistics) are copied from the online network.
    """
    t_params = [p for p in target.parameters()]
    o_params = [p.detach() for p in online.parameters()]
    torch._foreach_mul_(t_params, momentum)
    torch._foreach_add_(t_params, o_params, alpha=1.0 - momentum)
    for tb, ob in zip(target.buffers(), online.buffers()):
        tb.copy_(ob)


def cosine_momentum(base: float, final: float, step: int, total_steps: int) -> float:
    """BYOL's schedule ``τ = 1 − (1 − τ_base)·(cos(πk/K) + 1)/2`` generalised to any final value."""
    progress = min(step / max(total_steps, 1), 1.0)
    return final - (final - base) * (math.cos(math.pi * progress) + 1) / 2
