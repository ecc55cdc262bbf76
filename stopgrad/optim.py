"""Optimizers (SGD, LARS), parameter groups and the warmup + cosine learning-rate schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

from stopgrad.config import OptimConfig


class LARS(torch.optim.Optimizer):
    """Layer-wise adaptive rate scaling (You et al. 2017) as used by BYOL and Barlow Twins.

    Update for a parameter ``w`` with gradient ``g``:
    ``g ← g + wd·w``; ``q = η·‖w‖/‖g‖`` (1 if either norm is 0); ``v ← m·v + lr·q·g``; ``w ← w − v``.
    Groups with ``lars_exclude=True`` (biases, norm parameters) skip the weight decay and the
    adaptation, as in BYOL (Sec. 3.3).
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 eta: float = 0.02) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta,
                                      lars_exclude=False))

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if not group["lars_exclude"]:
                    if group["weight_decay"]:
                        g = g.add(p, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.norm(p), torch.norm(g)
                    q = torch.where((w_norm > 0) & (g_norm > 0), group["eta"] * w_norm / g_norm,
                                    torch.ones_like(w_norm))
                    g = g.mul(q)
                buf = self.state[p].get("momentum_buffer")
                if buf is None:
                    buf = self.state[p]["momentum_buffer"] = torch.clone(g).detach()
                else:
                    buf.mul_(group["momentum"]).add_(g)
                p.add_(buf, alpha=-group["lr"])
        return loss


def is_bias_or_norm(p: nn.Parameter) -> bool:
    """Biases and normalisation scales/shifts: the 1-d parameters."""
    return p.ndim <= 1


def split_groups(groups: list[dict], cfg: OptimConfig) -> list[dict]:
    """Split each method group into weights and bias/norm parameters (no weight decay, no LARS
    adaptation for the latter when ``cfg.exclude_bias_norm``)."""
    out = []
    for g in groups:
        wd = g.get("weight_decay", cfg.weight_decay)
        params = g["params"]
        excluded = [p for p in params if cfg.exclude_bias_norm and is_bias_or_norm(p)]
        ex_ids = {id(p) for p in excluded}
        kept = [p for p in params if id(p) not in ex_ids]
        meta = {k: v for k, v in g.items() if k not in ("params", "weight_decay")}
        if kept:
            out.append({**meta, "params": kept, "weight_decay": wd, "lars_exclude": False})
        if excluded:
            out.append({**meta, "name": f"{g.get('name', 'group')}/bias_norm", "params": excluded,
                        "weight_decay": 0.0, "lars_exclude": True})
    return out


def build_optimizer(groups: list[dict], cfg: OptimConfig, peak_lr: float) -> torch.optim.Optimizer:
    """SGD or LARS over the split groups; each group keeps ``lr_mult`` and ``fixed_lr`` for the schedule."""
    groups = split_groups(groups, cfg)
    for g in groups:
        g.setdefault("lr_mult", 1.0)
        g.setdefault("fixed_lr", False)
        g["lr"] = peak_lr * g["lr_mult"]
    if cfg.name == "sgd":
        opt = torch.optim.SGD(groups, lr=peak_lr, momentum=cfg.momentum)
    elif cfg.name == "lars":
        opt = LARS(groups, lr=peak_lr, momentum=cfg.momentum, eta=cfg.lars_eta)
    else:
        raise ValueError(f"optim.name={cfg.name!r}: expected 'sgd' or 'lars'")
    return opt


def peak_learning_rate(cfg: OptimConfig, batch_size: int) -> float:
    """``lr × batch/256`` under linear scaling (Goyal et al. 2017), else ``lr``."""
    return cfg.lr * batch_size / 256 if cfg.lr_scaling == "linear" else cfg.lr


def lr_at(step: int, total_steps: int, warmup_steps: int, peak: float, min_ratio: float = 0.0) -> float:
    """Linear warmup to ``peak`` over ``warmup_steps``, then half-cosine to ``min_ratio·peak``."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    progress = min(progress, 1.0)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_lr(opt: torch.optim.Optimizer, lr: float, peak: float) -> None:
    """Apply the scheduled ``lr``; groups with ``fixed_lr`` stay at ``peak × lr_mult``."""
    for g in opt.param_groups:
        g["lr"] = (peak if g["fixed_lr"] else lr) * g["lr_mult"]
