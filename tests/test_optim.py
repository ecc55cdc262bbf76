"""Optimizer groups, LARS and the learning-rate schedule against their definitions."""

import math

import pytest
import torch
from torch import nn

from stopgrad.config import OptimConfig
from stopgrad.optim import LARS, build_optimizer, lr_at, set_lr


def test_bias_and_norm_params_get_no_weight_decay_or_adaptation():
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    opt = build_optimizer([{"name": "all", "params": list(net.parameters())}],
                          OptimConfig(name="lars", weight_decay=1e-3), peak_lr=0.1)
    by_name = {g["name"]: g for g in opt.param_groups}
    assert by_name["all"]["weight_decay"] == 1e-3 and not by_name["all"]["lars_exclude"]
    ex = by_name["all/bias_norm"]
    assert ex["weight_decay"] == 0.0 and ex["lars_exclude"]
    assert all(p.ndim == 1 for p in ex["params"]) and all(p.ndim == 2 for p in by_name["all"]["params"])


def test_lars_step_matches_formula():
    w = nn.Parameter(torch.tensor([3.0, 4.0]))
    w.grad = torch.tensor([0.6, 0.8])
    opt = LARS([w], lr=0.5, momentum=0.9, weight_decay=0.1, eta=0.02)
    g = torch.tensor([0.6, 0.8]) + 0.1 * torch.tensor([3.0, 4.0])
    q = 0.02 * 5.0 / g.norm()
    expected = torch.tensor([3.0, 4.0]) - 0.5 * q * g
    opt.step()
    assert torch.allclose(w.detach(), expected)


def test_warmup_cosine_schedule():
    assert lr_at(0, 100, 10, 1.0) == pytest.approx(0.1)
    assert lr_at(9, 100, 10, 1.0) == pytest.approx(1.0)
    assert lr_at(10, 100, 10, 1.0) == pytest.approx(1.0)
    mid = 10 + 45
    assert lr_at(mid, 100, 10, 1.0) == pytest.approx(0.5)
    assert lr_at(100, 100, 10, 1.0, min_ratio=0.1) == pytest.approx(0.1)
    assert lr_at(30, 100, 0, 2.0) == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi * 0.3)))


def test_fixed_lr_group_ignores_schedule_and_keeps_multiplier():
    a, b = nn.Parameter(torch.zeros(2, 2)), nn.Parameter(torch.zeros(2, 2))
    opt = build_optimizer([{"name": "enc", "params": [a]},
                           {"name": "pred", "params": [b], "fixed_lr": True, "lr_mult": 10.0}],
                          OptimConfig(), peak_lr=0.05)
    set_lr(opt, 0.01, 0.05)
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs["enc"] == pytest.approx(0.01) and lrs["pred"] == pytest.approx(0.5)
