"""Backbones that map images ``(B, C, H, W)`` to pooled features ``(B, F)``, and their registry.

* ``resnet18`` / ``resnet50``: He et al., "Deep Residual Learning for Image Recognition", CVPR 2016
  (BasicBlock ``[2, 2, 2, 2]``, Bottleneck ``[3, 4, 6, 3]``) with the classifier removed. Module
  names follow torchvision (``conv1``, ``bn1``, ``layer1`` ... ``layer4``), so with the ``imagenet``
  stem a torchvision state dict without ``fc.*`` loads as is.
* ``resnet9``: the compact ResNet of Page's DAWNBench CIFAR-10 entry ("How to train your ResNet",
  2018), the ancestor of airbench (Jordan 2024); global average pooling instead of max pooling.
* ``convnet``: four conv3x3-BN-ReLU blocks, for 28x28 / 32x32 runs that must finish in minutes on a CPU.
* ``mlp``: Linear-BN-ReLU blocks on the flattened input, for toy data.

Every module carries its output width as ``feat_dim`` and works with ``torch.channels_last`` and
under ``torch.autocast("cpu", dtype=torch.bfloat16)``.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Callable

import torch
from torch import nn

STEMS = ("cifar", "imagenet", "small")


def _scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded to an int, at least 1."""
    return max(1, round(channels * width))


def _check_stem(stem: str, backbone: str, supported: tuple[str, ...]) -> None:
    if stem not in STEMS:
        close = difflib.get_close_matches(stem, STEMS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown stem {stem!r}{hint} (known: {', '.join(STEMS)})")
    if stem not in supported:
        raise ValueError(f"stem={stem!r} is not available for {backbone!r} (it supports: {', '.join(supported)}); "
                         f"the other stems apply to the ResNets")


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))


def _pool_relu() -> nn.Sequential:
    """2x2 max-pool, then ReLU: the same values and gradients as ReLU then max-pool (ReLU is monotone,
    so it commutes with a max, and both orders route a window's gradient to its largest input, or
    nowhere when that is not positive), with the ReLU's forward and backward on a quarter of the values."""
    return nn.Sequential(nn.MaxPool2d(2), nn.ReLU(inplace=True))


def _conv_pool_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


def _init_weights(module: nn.Module) -> None:
    """Kaiming-normal (fan_out) convs, unit-scale BN, as in torchvision's ResNet."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# ----------------------------------------------------------------------------------------- ResNet
class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 conv + BN) shortcut (He et al. 2016, Fig. 2)."""

    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(c_in, planes, stride)
        self.last_bn = self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.downsample(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) (He et al. 2016, Fig. 5); stride on the 3x3 ("ResNet v1.5")."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        c_out = planes * self.expansion
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(c_in, c_out, stride)
        self.last_bn = self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.downsample(x))


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    """Identity, or the projection shortcut (option B of He et al. 2016) when the shape changes."""
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class ResNet(nn.Module):
    """ResNet feature extractor (He et al., CVPR 2016) ending in global average pooling.

    Stems (``stem``):
        * ``"cifar"``: 3x3 conv, stride 1, no max-pool; stage 1 keeps the input resolution. The CIFAR
          variant used by SimCLR (Chen et al. 2020, App. B.9) and SimSiam (Chen & He 2021, App. D).
        * ``"imagenet"``: 7x7 conv stride 2 + 3x3 max-pool stride 2 (the paper's ImageNet stem, /4).
        * ``"small"``: the ``cifar`` stem with stride 2 in stage 1, so stages run at /2, /4, /8, /16
          (28x28 → 14, 7, 4, 2). About 4x fewer FLOPs than ``cifar``; meant for 28x28 images on a
          CPU, where the ``imagenet`` stem would leave 7x7 maps after the stem already.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        layers: blocks per stage, e.g. ``[2, 2, 2, 2]``.
        in_channels: image channels (1 for grayscale).
        width: multiplies the stage widths 64, 128, 256, 512 (each rounded, at least 1).
        stem: ``"cifar"``, ``"imagenet"`` or ``"small"``, see above.
        zero_init_residual: zero the last BN scale of every block, so each residual branch starts at
            zero and the block as (ReLU of) the identity (Goyal et al. 2017, Sec. 5.1).

    Examples:
        >>> net = ResNet(BasicBlock, [2, 2, 2, 2], in_channels=1, stem="small")
        >>> net(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 512])
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int], in_channels: int = 3,
                 width: float = 1.0, stem: str = "cifar", zero_init_residual: bool = False) -> None:
        super().__init__()
        _check_stem(stem, "resnet", STEMS)
        widths = [_scaled(c, width) for c in (64, 128, 256, 512)]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        c_in = widths[0]
        strides = [2 if stem == "small" else 1, 2, 2, 2]
        for i, (planes, n, stride) in enumerate(zip(widths, layers, strides), start=1):
            blocks = []
            for j in range(n):
                blocks.append(block(c_in, planes, stride if j == 0 else 1))
                c_in = planes * block.expansion
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feat_dim = c_in
        _init_weights(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(m.last_bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64w, H', W')
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)  # (B, feat_dim)


def resnet18(in_channels: int = 3, width: float = 1.0, stem: str = "cifar", zero_init_residual: bool = False) -> ResNet:
    """ResNet-18 (He et al. 2016, Table 1), feat_dim = 512·width; 11,168,832 parameters with the cifar stem."""
    return ResNet(BasicBlock, [2, 2, 2, 2], in_channels, width, stem, zero_init_residual)


def resnet50(in_channels: int = 3, width: float = 1.0, stem: str = "cifar", zero_init_residual: bool = False) -> ResNet:
    """ResNet-50 (He et al. 2016, Table 1), feat_dim = 2048·width."""
    return ResNet(Bottleneck, [3, 4, 6, 3], in_channels, width, stem, zero_init_residual)


# ---------------------------------------------------------------------------------------- ResNet-9
class _Residual(nn.Module):
    """``x + f(x)`` with ``f`` two conv3x3-BN-ReLU blocks (Page 2018)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn_relu(channels, channels), _conv_bn_relu(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(nn.Module):
    """The DAWNBench ResNet-9 (Page, "How to train your ResNet", 2018), features by global average pooling.

    prep conv(64) → conv(128), max-pool, residual(128) → conv(256), max-pool → conv(512), max-pool,
    residual(512); widths times ``width``. 6.57M parameters at width 1 with 3 input channels;
    28x28 inputs run at 28, 14, 7, 3. Page pools with a global max and classifies; we average-pool
    and return the 512·width features.

    Args:
        in_channels: image channels. width: multiplies all channel counts.
        stem: only ``"cifar"`` (the prep conv is fixed).
        zero_init_residual: zero the last BN scale in each residual branch, so it starts as the identity.
    """

    def __init__(self, in_channels: int = 3, width: float = 1.0, stem: str = "cifar",
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        _check_stem(stem, "resnet9", ("cifar",))
        c = [_scaled(n, width) for n in (64, 128, 256, 512)]
        self.features = nn.Sequential(
            _conv_bn_relu(in_channels, c[0]),
            _conv_bn_relu(c[0], c[1]), nn.MaxPool2d(2), _Residual(c[1]),
            _conv_bn_relu(c[1], c[2]), nn.MaxPool2d(2),
            _conv_bn_relu(c[2], c[3]), nn.MaxPool2d(2), _Residual(c[3]),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
        )
        self.feat_dim = c[3]
        _init_weights(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, _Residual):
                    nn.init.zeros_(m.body[-1][1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (B, feat_dim)


# ---------------------------------------------------------------------------------------- ConvNet
class GridPool(nn.AdaptiveAvgPool2d):
    """``AdaptiveAvgPool2d(pool)`` that passes a map already ``pool x pool`` through untouched (the
    3x3 map of a 28x28 input with ``pool=3``): the same values without the pooling kernels, whose
    backward was 2-3% of a Fashion-MNIST ConvNet step on the CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) == (self.output_size, self.output_size):
            return x
        return super().forward(x)


class ConvNet(nn.Module):
    """Four conv3x3-BN-ReLU blocks of width 32, 64, 128, 256 (times ``width``), 2x2 max-pool after the
    first three, then global average pooling; feat_dim = 256·width. In the first three blocks the
    max-pool runs before the ReLU (conv-BN-pool-ReLU), which computes the same function and gradients
    as conv-BN-ReLU-pool with the ReLU on a quarter of the values (:func:`_pool_relu`).

    A quick-run backbone for 28x28 and 32x32 images (28 → 14 → 7 → 3; 32 → 16 → 8 → 4), about
    10M multiply-adds per 28x28 image at width 1 (ResNet-18 with the cifar stem: ~0.45G).
    ``pool`` > 1 average-pools to a ``pool x pool`` grid and flattens it (feat_dim = 256·width·pool²),
    keeping the coarse spatial layout that global pooling discards; on 28x28 inputs ``pool=3`` is
    the whole final 3x3 map. On Fashion-MNIST that layout is worth about 2 kNN points (see README).

    Args:
        in_channels: image channels. width: multiplies all channel counts.
        stem: only ``"cifar"`` (accepted so one config drives every backbone).
        zero_init_residual: must be False; a ConvNet has no residual blocks.
        pool: side of the pooled output grid (1 = global average pooling).
        pool_first: max-pool straight after the conv of the first three blocks, before BN and ReLU
            (conv-pool-BN-ReLU, the order of airbench's conv groups, Jordan 2024), so BN and ReLU run
            on a quarter of the values there. ReLU commutes with max-pooling; BN does not exactly (its
            statistics are then those of the pooled map), so this is a variant to train, not a
            re-arrangement of trained weights.
        feature_bn: end with a BatchNorm over the flattened features, without scale or shift (the
            "BNNeck" of retrieval models, Luo et al., CVPRW 2019): the features leave the backbone
            centred and scaled per dimension by running statistics, instead of all non-negative around
            one shared mean direction, which crowds their cosines. The projector reads them too, so
            this is trained, not a readout added afterwards.
    """

    def __init__(self, in_channels: int = 3, width: float = 1.0, stem: str = "cifar",
                 zero_init_residual: bool = False, pool: int = 1, pool_first: bool = False,
                 feature_bn: bool = False) -> None:
        super().__init__()
        _check_stem(stem, "convnet", ("cifar",))
        if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
            raise ValueError(f"convnet pool={pool!r}: the pooled grid side must be an int of at least 1")
        if not isinstance(pool_first, bool):
            raise ValueError(f"convnet pool_first={pool_first!r}: must be true or false")
        if not isinstance(feature_bn, bool):
            raise ValueError(f"convnet feature_bn={feature_bn!r}: must be true or false")
        if zero_init_residual:
            raise ValueError("zero_init_residual=True: 'convnet' has no residual blocks; set it False "
                             "or use a ResNet")
        c = [_scaled(n, width) for n in (32, 64, 128, 256)]
        if pool_first:
            blocks = [_conv_pool_bn_relu(c_in, c_out) for c_in, c_out in zip([in_channels, *c[:2]], c[:3])]
        else:
            blocks = [m for c_in, c_out in zip([in_channels, *c[:2]], c[:3])
                      for m in (_conv_bn(c_in, c_out), _pool_relu())]  # keys features.{0,2,4}.{0,1} as before
        self.features = nn.Sequential(*blocks, _conv_bn_relu(c[2], c[3]), GridPool(pool), nn.Flatten(1))
        self.feat_dim = c[3] * pool * pool
        self.neck = nn.BatchNorm1d(self.feat_dim, affine=False) if feature_bn else nn.Identity()
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.features(x))  # (B, feat_dim)


# -------------------------------------------------------------------------------------------- MLP
class MLP(nn.Module):
    """``depth`` Linear-BN-ReLU blocks on the flattened input, for toy data; feat_dim = hidden·width.

    Accepts ``(B, C, H, W)`` images (flattened) or ``(B, D)`` vectors.

    Args:
        in_channels: image channels; the input size is ``in_channels * image_size**2`` unless ``in_dim``
            is given.
        width: multiplies ``hidden``.
        stem: only ``"cifar"`` (accepted so one config drives every backbone).
        zero_init_residual: must be False; an MLP has no residual blocks.
        hidden: width of every layer (the feature width). depth: number of Linear-BN-ReLU blocks.
        image_size: side of the square input images. in_dim: flattened input size (overrides the above).

    Examples:
        >>> MLP(in_dim=10, hidden=64, depth=2)(torch.randn(4, 10)).shape
        torch.Size([4, 64])
    """

    def __init__(self, in_channels: int = 3, width: float = 1.0, stem: str = "cifar",
                 zero_init_residual: bool = False, hidden: int = 512, depth: int = 2, image_size: int = 28,
                 in_dim: int | None = None) -> None:
        super().__init__()
        _check_stem(stem, "mlp", ("cifar",))
        if zero_init_residual:
            raise ValueError("zero_init_residual=True: 'mlp' has no residual blocks; set it False or use a ResNet")
        if depth < 1 or hidden < 1:
            raise ValueError(f"mlp depth={depth}, hidden={hidden}: both must be at least 1")
        dims = [in_dim if in_dim is not None else in_channels * image_size * image_size]
        dims += [_scaled(hidden, width)] * depth
        layers: list[nn.Module] = [nn.Flatten(1)]
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(d_in, d_out, bias=False), nn.BatchNorm1d(d_out), nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers)
        self.in_dim = dims[0]
        self.feat_dim = dims[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)  # (B, D), also for channels_last inputs
        if x.shape[1] != self.in_dim:
            raise ValueError(f"mlp backbone built for {self.in_dim} input values, got {x.shape[1]} "
                             f"(input shape {tuple(x.shape)}); pass image_size= or in_dim= to build_backbone")
        return self.net(x)  # (B, feat_dim)


# --------------------------------------------------------------------------------------- registry
BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "resnet9": ResNet9,
    "convnet": ConvNet,
    "mlp": MLP,
}


def build_backbone(name: str, in_channels: int = 3, width: float = 1.0, stem: str = "cifar",
                   **kwargs) -> tuple[nn.Module, int]:
    """Build a registered backbone.

    Args:
        name: a key of ``BACKBONES``.
        in_channels: image channels (1 for grayscale).
        width: channel multiplier (each width rounded, at least 1).
        stem: ``"cifar"``, ``"imagenet"`` or ``"small"`` (ResNet-18/50; the others take only ``"cifar"``).
        **kwargs: backbone-specific options, e.g. ``zero_init_residual`` (ResNets), ``hidden``/``depth`` (mlp).

    Returns:
        ``(module, feat_dim)``: the module maps ``(B, C, H, W)`` floats to ``(B, feat_dim)`` features
        after global average pooling.

    Examples:
        >>> net, feat_dim = build_backbone("resnet18", in_channels=1, stem="small")
        >>> feat_dim
        512
    """
    if name not in BACKBONES:
        close = difflib.get_close_matches(name, list(BACKBONES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown backbone {name!r}{hint} (known: {', '.join(BACKBONES)})")
    if in_channels < 1:
        raise ValueError(f"in_channels={in_channels}: must be at least 1 (1 for grayscale, 3 for RGB)")
    if not width > 0:
        raise ValueError(f"width={width}: the channel multiplier must be positive, e.g. 0.5, 1 or 2")
    builder = BACKBONES[name]
    accepted = [p for p in inspect.signature(builder).parameters if p not in ("in_channels", "width", "stem")]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"backbone {name!r} does not take {', '.join(unknown)} "
                         f"(its options: {', '.join(accepted) or 'none'})")
    module = builder(in_channels=in_channels, width=width, stem=stem, **kwargs)
    return module, module.feat_dim
