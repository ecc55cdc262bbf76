"""Projector and predictor MLPs, and named head presets that quote their papers."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from torch import nn


def mlp(in_dim: int, hidden_dim: int, out_dim: int, num_layers: int = 2, last_bn: bool = False,
        last_bn_affine: bool = True) -> nn.Sequential:
    """``num_layers`` linear layers with BN + ReLU between them, optionally BN on the output.

    Args:
        in_dim: input width. hidden_dim: width of the hidden layers. out_dim: output width.
        num_layers: number of linear layers (1 = a single linear map).
        last_bn: BatchNorm1d on the output (SimSiam's projector, Chen & He 2021, Sec. 4).
        last_bn_affine: learnable scale/shift on that BN (SimSiam's reference sets it off).

    Examples:
        >>> head = mlp(512, 2048, 2048, num_layers=3, last_bn=True, last_bn_affine=False)
    """
    if num_layers < 1:
        raise ValueError(f"num_layers={num_layers}: an MLP head needs at least one layer")
    layers: list[nn.Module] = []
    dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
    for i in range(num_layers):
        last = i == num_layers - 1
        # a bias before BN is redundant: only an un-normalised output layer keeps one
        layers.append(nn.Linear(dims[i], dims[i + 1], bias=last and not last_bn))
        if not last:
            layers += [nn.BatchNorm1d(dims[i + 1]), nn.ReLU(inplace=True)]
        elif last_bn:
            layers.append(nn.BatchNorm1d(dims[i + 1], affine=last_bn_affine))
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class HeadPreset:
    """Projector and predictor shapes of one paper's recipe."""

    proj_hidden: int
    proj_dim: int
    proj_layers: int
    proj_last_bn: bool
    pred_hidden: int
    source: str


HEAD_PRESETS: dict[str, HeadPreset] = {
    # SimSiam (Chen & He, CVPR 2021), Sec. 4 "Projection MLP ... 3 layers ... 2048-d; prediction MLP
    # ... hidden layer's dimension is 512", BN on the output of the projector.
    "simsiam-imagenet": HeadPreset(2048, 2048, 3, True, 512, "SimSiam Sec. 4 (ImageNet)"),
    # SimSiam App. D (CIFAR-10): the projection MLP has 2 layers; same predictor bottleneck.
    "simsiam-cifar": HeadPreset(2048, 2048, 2, True, 512, "SimSiam App. D (CIFAR-10)"),
    # BYOL (Grill et al., NeurIPS 2020), Sec. 3.3: MLPs with a 4096-d hidden layer, BN, ReLU,
    # output 256-d; the predictor has the same architecture.
    "byol": HeadPreset(4096, 256, 2, False, 4096, "BYOL Sec. 3.3"),
    # DirectPred (Tian et al. 2021) reference on STL-10/CIFAR: projector 512 hidden → 128 with BN.
    "directpred": HeadPreset(512, 128, 2, False, 512, "DirectPred App. (luckmatters ssl/)"),
    # Small heads for quick CPU runs on 28x28 data (stopgrad's own choice, tuned on Fashion-MNIST).
    "small": HeadPreset(1024, 256, 2, True, 256, "stopgrad CPU preset"),
}


def get_head_preset(name: str) -> HeadPreset:
    """Look a head preset up by name; the error lists the known ones."""
    if name not in HEAD_PRESETS:
        close = difflib.get_close_matches(name, list(HEAD_PRESETS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown head preset {name!r}{hint} (known: {', '.join(HEAD_PRESETS)})")
    return HEAD_PRESETS[name]


def check_sizes(cfg: object, *names: str) -> None:
    """Head sizes given in a method config: each ``None`` (the preset's) or at least 1."""
    for name in names:
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise ValueError(f"method.{name}={value}: a layer size or count must be >= 1 (or null for the preset's)")


@dataclass
class ProjectorConfig:
    """The projector fields of the methods built on a bare projector (SimCLR, Barlow Twins, SwAV,
    Simple): a head preset and optional size overrides (``None`` keeps the preset's). A method's
    ``Config`` subclasses it and calls ``super().validate()`` from its own ``validate``."""

    heads: str = "small"  # head sizes: simsiam-imagenet | simsiam-cifar | byol | directpred | small
    proj_hidden: int | None = None  # projector hidden width (None: the preset's)
    proj_dim: int | None = None  # projector output width (None: the preset's)
    proj_layers: int | None = None  # projector layers (None: the preset's)

    def validate(self) -> None:
        get_head_preset(self.heads)
        check_sizes(self, "proj_hidden", "proj_dim", "proj_layers")


def projector_from(cfg: ProjectorConfig, feat_dim: int) -> tuple[nn.Module, int]:
    """The projector MLP named by ``cfg.heads`` with the size overrides of ``cfg``, and its width."""
    preset = get_head_preset(cfg.heads)
    dim = cfg.proj_dim or preset.proj_dim
    return mlp(feat_dim, cfg.proj_hidden or preset.proj_hidden, dim, cfg.proj_layers or preset.proj_layers,
               last_bn=preset.proj_last_bn, last_bn_affine=False), dim
