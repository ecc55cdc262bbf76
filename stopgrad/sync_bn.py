"""Batch normalisation over the global batch under torchrun, on any device.

SimSiam, BYOL, the predictor family, Barlow Twins and Simple lean on the batch statistics of their
BN layers; with N processes each plain BN sees 1/N of the batch, a different method from the
one-process run. :func:`convert` turns every BN of a model into :class:`GlobalBatchNorm`, whose
training-mode statistics are the global batch's: the per-process sums of ``x`` and ``x²`` and the
count go through one all-reduce that keeps gradients (:func:`stopgrad.distributed.all_reduce_sum_grad`),
so the forward and the backward are those of one BN over the whole batch. torch's own
``SyncBatchNorm`` does the same on GPUs only; this one also runs under gloo on CPUs, and is a plain
BN in one process or in eval mode. ``train.sync_bn=false`` keeps per-process statistics.
"""

from __future__ import annotations

import torch
from torch import nn

from stopgrad import distributed as dist


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm1d/2d whose training statistics are those of the global batch (see the module doc)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() not in (2, 3, 4):
            raise ValueError(f"expected 2D, 3D or 4D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if not (self.training and dist.is_dist() and dist.world_size() > 1):
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))  # every axis but the channels
        xf = x.float()
        count = torch.tensor([xf.numel() / xf.shape[1]], device=x.device, dtype=torch.float32)
        stats = torch.cat([xf.sum(dims), (xf * xf).sum(dims), count])  # (2C + 1,)
        stats = dist.all_reduce_sum_grad(stats)
        C = x.shape[1]
        n = stats[-1]
        mean = stats[:C] / n
        var = (stats[C:2 * C] / n - mean * mean).clamp_min(0)  # biased, as BN normalises with it
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked + 1)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)), alpha=m)
                self.num_batches_tracked.add_(1)
        shape = [1, C] + [1] * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.float().view(shape) + self.bias.float().view(shape)
        return y.to(x.dtype)


def convert(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm1d``/``BatchNorm2d`` in ``module`` by a :class:`GlobalBatchNorm`
    holding the same parameters and running statistics; returns the module (changed in place)."""
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and not isinstance(module, GlobalBatchNorm):
        new = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats, device=None)
        with torch.no_grad():
            if module.affine:
                new.weight.copy_(module.weight)
                new.bias.copy_(module.bias)
                new.weight.requires_grad_(module.weight.requires_grad)
                new.bias.requires_grad_(module.bias.requires_grad)
            if module.track_running_stats:
                new.running_mean.copy_(module.running_mean)
                new.running_var.copy_(module.running_var)
                new.num_batches_tracked.copy_(module.num_batches_tracked)
        new.train(module.training)
        return new
    for name, child in module.named_children():
        setattr(module, name, convert(child))
    return module


def count(module: nn.Module) -> int:
    """How many :class:`GlobalBatchNorm` layers ``module`` holds."""
    return sum(isinstance(m, GlobalBatchNorm) for m in module.modules())


