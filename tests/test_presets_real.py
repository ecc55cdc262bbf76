"""The real-data presets (CIFAR-10/100, STL-10, ImageNet-100): complete, sourced, and costed."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from stopgrad.backbones import build_backbone
from stopgrad.commands import SHARED_PRESETS
from stopgrad.config import list_presets, resolve
from stopgrad.cost import forward_flops, has_target, preset_cost, view_shapes
from stopgrad.presets import describe

FOLDERS = ("cifar10", "cifar100", "stl10", "imagenet-100", "imagenet-100-resnet50")
METHODS = ("simsiam", "byol", "directpred", "directcopy", "directset", "identity", "fixed-diagonal",
           "byol-linear", "byol-mlp", "simclr", "barlow", "swav", "dino", "simple", "supervised")


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_method_has_a_preset_that_names_its_source(folder):
    names = set(list_presets())
    for method in METHODS:
        name = f"{folder}/{method}"
        assert name in names, f"{name} is missing"
        assert len(describe(name)) > 20, f"{name} has no leading comment saying what it is and where it comes from"


def test_presets_say_what_they_are():
    cfg = resolve("cifar10/fixed-diagonal")
    assert cfg.method_name == "byol" and cfg.method.predictor == "fixed-diagonal" and cfg.method.heads == "directpred"
    assert (cfg.optim.lr, cfg.optim.lr_scaling, cfg.optim.min_lr_ratio, cfg.data.batch_size) == (0.03, "none", 1.0, 128)
    assert resolve("cifar100/byol").data.dataset == "cifar100" and resolve("cifar100/byol").data.views == "32-byol"
    stl = resolve("stl10/directpred")
    assert (stl.data.dataset, stl.model.stem, stl.data.views, stl.train.epochs) == ("stl10", "imagenet", "96", 100)
    r50 = resolve("imagenet-100-resnet50/dino")
    assert (r50.model.backbone, r50.data.dataset, r50.data.image_size) == ("resnet50", "image-folder", 224)
    assert r50.method.teacher_temp_warmup_steps == 50 * (126_689 // 256)


def test_meta_flop_count_equals_a_real_count():
    cfg = resolve("cifar10/simsiam")
    backbone, _ = build_backbone("resnet18", in_channels=3, stem="cifar")
    with FlopCounterMode(display=False) as counter:
        backbone(torch.zeros(1, 3, 32, 32))
    assert forward_flops(cfg, (3, 32, 32)) == counter.get_total_flops() > 1e9


def test_step_cost_counts_views_backward_and_target():
    simsiam, byol = resolve("cifar10/simsiam"), resolve("cifar10/byol")
    assert view_shapes(simsiam) == [(3, 32, 32), (3, 32, 32)]
    assert not has_target(simsiam) and has_target(byol) and has_target(resolve("cifar10/dino"))
    f = forward_flops(simsiam, (3, 32, 32))
    assert preset_cost(simsiam).gflop_per_step * 1e9 == pytest.approx(256 * 2 * 3 * f)
    assert preset_cost(byol).gflop_per_step * 1e9 == pytest.approx(256 * 2 * 4 * f)
    c = preset_cost(simsiam)
    assert c.steps_per_epoch == 50_000 // 256 and c.gpu_hours == pytest.approx(c.gpu_hours_per_epoch * 1000)
    assert c.source.startswith("estimate")


def test_presets_cli_lists_and_costs(capsys):
    from stopgrad.cli import main

    assert main(["presets", "stl10/"]) == 0
    out = capsys.readouterr().out
    assert "stl10/directcopy" in out and "Wang et al. 2021" in out and "cifar10/" not in out
    assert main(["presets", "cifar10/dino", "--cost"]) == 0
    out = capsys.readouterr().out
    assert "cifar10/dino" in out and "estimate" in out and "1000" in out
    assert all(f"cifar10/{s} " not in out for s in SHARED_PRESETS)
    assert main(["presets", "no-such/"]) != 0
    assert "no preset starts with 'no-such/'" in capsys.readouterr().err
