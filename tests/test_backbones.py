"""Tests for stopgrad.backbones: shapes, widths, parameter counts, stems, precision and errors."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from stopgrad.backbones import BACKBONES, STEMS, BasicBlock, Bottleneck, build_backbone

# (name, stem, width, feat_dim); ResNet-50 at width 1/4 keeps the suite fast (width is tested below)
CONFIGS = [
    ("resnet18", "cifar", 1.0, 512), ("resnet18", "small", 1.0, 512), ("resnet18", "imagenet", 1.0, 512),
    ("resnet50", "cifar", 0.25, 512), ("resnet50", "small", 0.25, 512), ("resnet50", "imagenet", 0.25, 512),
    ("resnet9", "cifar", 1.0, 512), ("convnet", "cifar", 1.0, 256),
]
SHAPES = [(1, 28), (3, 32)]


def record_shape(module: nn.Module, shapes: dict[str, torch.Size]) -> None:
    """Store the output shape of ``module`` in ``shapes["out"]`` on the next forward."""
    def hook(mod: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        shapes["out"] = output.shape
    module.register_forward_hook(hook)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    """Seeded, single-threaded: batches of 2 gain nothing from threads, and on a shared 2-core
    machine two threads were several times slower (see benchmarks/bench_backbones.py)."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name,stem,width,feat", CONFIGS)
@pytest.mark.parametrize("channels,size", SHAPES)
def test_output_shape_and_feat_dim(name: str, stem: str, width: float, feat: int, channels: int, size: int) -> None:
    net, feat_dim = build_backbone(name, in_channels=channels, width=width, stem=stem)
    assert feat_dim == feat == net.feat_dim
    out = net(torch.randn(2, channels, size, size))
    assert out.shape == (2, feat_dim)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_imagenet_stem_at_96(name: str) -> None:
    net, feat_dim = build_backbone(name, in_channels=3, width=0.5, stem="imagenet")
    shapes: dict[str, torch.Size] = {}
    record_shape(net.layer1, shapes)
    assert net(torch.randn(2, 3, 96, 96)).shape == (2, feat_dim)
    assert shapes["out"][-2:] == (24, 24)  # 7x7/2 conv + 3x3/2 max-pool: 96 / 4


@pytest.mark.parametrize("channels,size", SHAPES)
def test_mlp_shapes(channels: int, size: int) -> None:
    net, feat_dim = build_backbone("mlp", in_channels=channels, image_size=size, hidden=64, depth=3)
    assert feat_dim == 64
    assert net(torch.randn(4, channels, size, size)).shape == (4, 64)
    assert sum(isinstance(m, nn.Linear) for m in net.modules()) == 3
    vec, dim = build_backbone("mlp", in_dim=10, hidden=16, depth=1)
    assert vec(torch.randn(4, 10)).shape == (4, dim) == (4, 16)
    with pytest.raises(ValueError, match="in_dim"):
        net(torch.randn(4, channels, size + 1, size + 1))


def test_resnet18_cifar_param_count() -> None:
    # torchvision resnet18 has 11,689,512 params: minus fc (513,000) and swapping the 7x7x3x64 stem
    # conv (9,408) for a 3x3x3x64 one (1,728) gives 11,168,832.
    net, _ = build_backbone("resnet18", in_channels=3, stem="cifar")
    assert n_params(net) == 11_168_832
    net50, _ = build_backbone("resnet50", in_channels=3, stem="imagenet")
    assert n_params(net50) == 25_557_032 - 2_049_000  # torchvision resnet50 minus fc


@pytest.mark.parametrize("name,base_feat", [("resnet18", 512), ("resnet50", 2048), ("resnet9", 512),
                                            ("convnet", 256), ("mlp", 512)])
def test_width_multiplier(name: str, base_feat: int) -> None:
    nets = {w: build_backbone(name, in_channels=1, width=w) for w in (0.5, 1.0, 2.0)}
    for w, (net, feat_dim) in nets.items():
        assert feat_dim == round(base_feat * w)
    p = {w: n_params(net) for w, (net, _) in nets.items()}
    assert p[0.5] < p[1.0] < p[2.0]
    if name != "mlp":  # conv weights dominate and scale with width²
        assert 3.5 < p[2.0] / p[1.0] < 4.1 and 3.5 < p[1.0] / p[0.5] < 4.1
    tiny, feat_dim = build_backbone(name, in_channels=1, width=0.001)  # widths round up to 1 channel
    assert feat_dim == (4 if name == "resnet50" else 1)
    assert tiny(torch.randn(2, 1, 28, 28)).shape == (2, feat_dim)


@pytest.mark.parametrize("stem,expected", [("cifar", 28), ("small", 14), ("imagenet", 7)])
def test_stem_resolution(stem: str, expected: int) -> None:
    net, _ = build_backbone("resnet18", in_channels=1, stem=stem)
    sizes: dict[str, torch.Size] = {}
    record_shape(net.layer1, sizes)
    net(torch.randn(2, 1, 28, 28))
    assert sizes["out"][-2:] == (expected, expected)


def test_unknown_name_and_stem_raise() -> None:
    with pytest.raises(ValueError) as err:
        build_backbone("resnet19")
    msg = str(err.value)
    assert "'resnet19'" in msg and all(name in msg for name in BACKBONES)
    with pytest.raises(ValueError) as err:
        build_backbone("resnet18", stem="cifra")
    assert "'cifra'" in str(err.value) and all(s in str(err.value) for s in STEMS)
    with pytest.raises(ValueError, match="'small'.*convnet"):
        build_backbone("convnet", stem="small")
    with pytest.raises(ValueError, match="hiden"):
        build_backbone("mlp", hiden=3)
    with pytest.raises(ValueError, match="no residual"):
        build_backbone("convnet", zero_init_residual=True)
    with pytest.raises(ValueError, match="width"):
        build_backbone("convnet", width=0)


@pytest.mark.parametrize("name,stem,width", [("resnet18", "cifar", 0.5), ("resnet18", "small", 1.0),
                                             ("resnet50", "imagenet", 0.25), ("resnet9", "cifar", 0.5),
                                             ("convnet", "cifar", 1.0), ("mlp", "cifar", 1.0)])
def test_channels_last_bf16_autocast(name: str, stem: str, width: float) -> None:
    net, feat_dim = build_backbone(name, in_channels=1, width=width, stem=stem)
    net = net.to(memory_format=torch.channels_last)
    x = torch.randn(4, 1, 28, 28).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    assert out.shape == (4, feat_dim)
    assert torch.isfinite(out.float()).all()
    out.float().square().mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet9"])
def test_zero_init_residual(name: str) -> None:
    net, _ = build_backbone(name, in_channels=1, width=0.25, zero_init_residual=True)
    blocks = [m for m in net.modules() if isinstance(m, (BasicBlock, Bottleneck))]
    if name == "resnet9":
        blocks = [m for m in net.modules() if type(m).__name__ == "_Residual"]
        assert len(blocks) == 2
        assert all((b.body[-1][1].weight == 0).all() for b in blocks)
    else:
        assert len(blocks) == (8 if name == "resnet18" else 16)
        assert all((b.last_bn.weight == 0).all() for b in blocks)
    # a block without a projection shortcut starts as the identity on non-negative inputs
    net.eval()
    for block in blocks:
        if name != "resnet9" and not isinstance(block.downsample, nn.Identity):
            continue
        c = block.body[0][0].in_channels if name == "resnet9" else block.conv1.in_channels
        x = torch.rand(2, c, 7, 7)
        torch.testing.assert_close(block(x), x)
    default, _ = build_backbone(name, in_channels=1, width=0.25)
    assert all(m.weight.abs().sum() > 0 for m in default.modules() if isinstance(m, nn.BatchNorm2d))


def test_convnet_pool_grid_keeps_layout():
    net, dim = build_backbone("convnet", in_channels=1, width=0.25, pool=3)
    assert dim == 64 * 9
    x = torch.randn(2, 1, 28, 28)
    assert net(x).shape == (2, dim)
    gap, gdim = build_backbone("convnet", in_channels=1, width=0.25)
    gap.load_state_dict(net.state_dict())
    # the grid features average back to the global-pooled ones
    assert torch.allclose(net.eval()(x).view(2, 64, 9).mean(-1), gap.eval()(x), atol=1e-5)
    with pytest.raises(ValueError, match="pool=0"):
        build_backbone("convnet", pool=0)


def test_grid_pool_passes_an_exact_map_through_and_pools_others():
    from stopgrad.backbones import GridPool
    x = torch.randn(2, 4, 3, 3)
    assert GridPool(3)(x) is x  # no kernel, no copy
    assert torch.equal(GridPool(3)(x), torch.nn.AdaptiveAvgPool2d(3)(x))
    y = torch.randn(2, 4, 4, 4)
    assert torch.allclose(GridPool(3)(y), torch.nn.AdaptiveAvgPool2d(3)(y))
    assert GridPool(3)(y).shape == (2, 4, 3, 3)


def test_convnet_default_keeps_its_state_dict_keys_and_pool_first_reorders_the_blocks():
    net, _ = build_backbone("convnet", in_channels=1, pool=3)
    keys = list(net.state_dict())
    assert keys[:2] == ["features.0.0.weight", "features.0.1.weight"] and "features.6.1.running_var" in keys
    assert len(keys) == 24  # checkpoints written before pool_first and GridPool still load
    pf, dim = build_backbone("convnet", in_channels=1, pool=3, pool_first=True)
    first = pf.features[0]
    assert [type(m).__name__ for m in first] == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"]
    assert pf(torch.randn(2, 1, 24, 24)).shape == (2, dim) == (2, 2304)
    # the same weights in both orders: with BN in eval mode (a positive per-channel scale) the orders
    # agree, since max-pooling commutes with it and with ReLU; with batch statistics they do not
    mapping = {"features.0.0": "features.0.0", "features.0.1": "features.0.2", "features.2.0": "features.1.0",
               "features.2.1": "features.1.2", "features.4.0": "features.2.0", "features.4.1": "features.2.2",
               "features.6.0": "features.3.0", "features.6.1": "features.3.1"}
    moved = {}
    for k, v in net.state_dict().items():
        prefix, leaf = k.rsplit(".", 1)
        moved[f"{mapping[prefix]}.{leaf}"] = v
    pf.load_state_dict(moved)
    x = torch.randn(4, 1, 24, 24)
    net.eval(), pf.eval()
    torch.testing.assert_close(pf(x), net(x), atol=1e-5, rtol=1e-5)
    net.train(), pf.train()
    assert not torch.allclose(pf(x), net(x), atol=1e-3)
    with pytest.raises(ValueError, match="pool_first='yes'"):
        build_backbone("convnet", pool_first="yes")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_convnet_pools_before_its_relu_with_the_values_and_gradients_of_relu_then_pool(dtype):
    torch.manual_seed(0)
    net, _ = build_backbone("convnet", in_channels=1, pool=3, feature_bn=True)
    assert [type(m).__name__ for m in net.features[1]] == ["MaxPool2d", "ReLU"]
    ref = copy.deepcopy(net)  # the same weights as conv-BN-ReLU, then max-pool (the order until 2026-12-07)
    for i in (0, 2, 4):
        ref.features[i] = torch.nn.Sequential(*ref.features[i], torch.nn.ReLU())
        ref.features[i + 1] = torch.nn.MaxPool2d(2)
    net, ref = net.to(dtype).train(), ref.to(dtype).train()
    x = torch.randn(16, 1, 24, 24, dtype=dtype)
    x[:, :, :4] = 0.0  # flat windows: ties for the max, and all-zero windows after the ReLU
    out, out_ref = net(x), ref(x)
    assert torch.equal(out, out_ref)
    w = torch.randn_like(out)
    (out * w).sum().backward()
    (out_ref * w).sum().backward()
    for (name, p), p_ref in zip(net.named_parameters(), ref.parameters()):
        assert torch.equal(p.grad, p_ref.grad), name


def test_convnet_feature_bn_centres_and_scales_each_feature_and_keeps_old_checkpoints_loading():
    torch.manual_seed(0)
    plain, dim = build_backbone("convnet", in_channels=1, pool=3)
    neck, dim_n = build_backbone("convnet", in_channels=1, pool=3, feature_bn=True)
    assert dim == dim_n == 2304
    assert not any(k.startswith("neck") for k in plain.state_dict())  # no new keys without it
    assert {k for k in neck.state_dict() if k.startswith("neck")} == {"neck.running_mean", "neck.running_var",
                                                                      "neck.num_batches_tracked"}
    neck.load_state_dict({**plain.state_dict(), **{k: v for k, v in neck.state_dict().items() if k.startswith("neck")}})
    x = torch.rand(64, 1, 24, 24)
    raw, out = plain(x), neck(x)
    assert (raw >= 0).all() and raw.mean() > 0.1  # after the ReLU: one shared positive mean
    torch.testing.assert_close(out.mean(0), torch.zeros(dim), atol=1e-4, rtol=0)
    standardised = (raw - raw.mean(0)) / (raw.var(0, unbiased=False) + neck.neck.eps).sqrt()
    torch.testing.assert_close(out, standardised, atol=1e-4, rtol=1e-4)
    assert out.detach().std(0, unbiased=False).median().item() == pytest.approx(1.0, abs=0.01)
    neck.eval()  # evaluation reads the running statistics, not the batch's
    single = neck(x[:1])
    expected = (plain.eval()(x[:1]) - neck.neck.running_mean) / (neck.neck.running_var + neck.neck.eps).sqrt()
    torch.testing.assert_close(single, expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="feature_bn=1"):
        build_backbone("convnet", feature_bn=1)
