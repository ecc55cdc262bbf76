"""A view: its :class:`ViewConfig` (crop, flip, jitter, blur, solarise, normalisation) and
:class:`Views`, which makes one augmented view per config from a batch of uint8 images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stopgrad.augment.ops import (
    _BLUR,
    _FACTORS,
    _FLIP,
    _GRAY,
    _JITTER,
    _SIGMA,
    _SOLARIZE,
    Range,
    _color_jitter_,
    _crop_boxes,
    _grayscale,
    _normalize,
    _per_sample,
    _random_blur_,
    _resized_crop,
    _solarize_,
    _to_unit_float,
    _uniforms,
    blur_kernel_size,
)
from stopgrad.augment.erase import random_erase_

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
STL10_MEAN = (0.4467, 0.4398, 0.4066)
STL10_STD = (0.2603, 0.2566, 0.2713)
FASHION_MNIST_MEAN = (0.2860,)
FASHION_MNIST_STD = (0.3530,)


@dataclass(frozen=True)
class ViewConfig:
    """Hyper-parameters of one augmented view (defaults: BYOL's colour ops, Grill et al., 2020, Table 6).

    Frozen: derive variants with ``dataclasses.replace`` or ``build_views(..., **overrides)``. Lists
    (e.g. from YAML) are accepted for the pair and per-channel fields and stored as tuples.

    Jitter strengths follow torchvision's ``ColorJitter``: a float ``s`` samples the brightness,
    contrast and saturation factor uniformly from ``[max(0, 1 - s), 1 + s]`` and the hue shift from
    ``[-s, s]``; a pair ``(lo, hi)`` gives the range directly (``(1.3, 1.3)`` pins it).

    Attributes:
        size: Output side length in pixels.
        crop_scale: Range of the crop's area as a fraction of the image area, in (0, 1].
        crop_ratio: Range of the crop's aspect ratio (width / height), sampled log-uniformly.
        hflip: Probability of a horizontal flip.
        jitter_p: Probability that a sample gets colour jitter.
        brightness: Brightness strength (float >= 0) or factor range.
        contrast: Contrast strength (float >= 0) or factor range.
        saturation: Saturation strength (float >= 0) or factor range; ignored for 1 channel.
        hue: Hue strength in [0, 0.5] or shift range within [-0.5, 0.5]; ignored for 1 channel.
        grayscale_p: Probability of converting to grayscale; ignored for 1 channel.
        blur_p: Probability of a Gaussian blur.
        blur_sigma: Range of the blur's standard deviation in pixels.
        solarize_p: Probability of solarisation (``x -> 1 - x`` where ``x >= 0.5``).
        erase_p: Probability of random erasing (Zhong et al. 2020): one rectangle set to the mean.
        erase_scale: Range of the erased area as a fraction of the image area.
        erase_ratio: Range of the erased rectangle's aspect ratio, sampled log-uniformly.
        mean: Per-channel normalisation mean; its length is the channel count.
        std: Per-channel normalisation standard deviation.

    Raises:
        ValueError: naming the field and the value, when a field is out of range.
    """

    size: int
    crop_scale: Range = (0.2, 1.0)
    crop_ratio: Range = (3 / 4, 4 / 3)
    hflip: float = 0.5
    jitter_p: float = 0.8
    brightness: float | Range = 0.4
    contrast: float | Range = 0.4
    saturation: float | Range = 0.2
    hue: float | Range = 0.1
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: Range = (0.1, 2.0)
    solarize_p: float = 0.0
    erase_p: float = 0.0
    erase_scale: Range = (0.02, 0.33)
    erase_ratio: Range = (0.3, 3.3)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size <= 0:
            raise ValueError(f"ViewConfig.size must be a positive int, got {self.size!r}")
        for name in ("crop_scale", "crop_ratio", "blur_sigma", "erase_scale", "erase_ratio", "mean", "std"):
            object.__setattr__(self, name, _as_floats(name, getattr(self, name)))
        for name in ("brightness", "contrast", "saturation", "hue"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, _as_floats(name, value))
        lo, hi = _pair("crop_scale", self.crop_scale)
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"ViewConfig.crop_scale must satisfy 0 < min <= max <= 1, got {self.crop_scale!r}")
        lo, hi = _pair("crop_ratio", self.crop_ratio)
        if not 0 < lo <= hi:
            raise ValueError(f"ViewConfig.crop_ratio must satisfy 0 < min <= max, got {self.crop_ratio!r}")
        lo, hi = _pair("erase_scale", self.erase_scale)
        if not 0 < lo <= hi < 1:
            raise ValueError(f"ViewConfig.erase_scale must satisfy 0 < min <= max < 1, got {self.erase_scale!r}")
        lo, hi = _pair("erase_ratio", self.erase_ratio)
        if not 0 < lo <= hi:
            raise ValueError(f"ViewConfig.erase_ratio must satisfy 0 < min <= max, got {self.erase_ratio!r}")
        lo, hi = _pair("blur_sigma", self.blur_sigma)
        if not 0 < lo <= hi:
            raise ValueError(f"ViewConfig.blur_sigma must satisfy 0 < min <= max, got {self.blur_sigma!r}")
        for name in ("hflip", "jitter_p", "grayscale_p", "blur_p", "solarize_p", "erase_p"):
            p = getattr(self, name)
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
                raise ValueError(f"ViewConfig.{name} is a probability and must lie in [0, 1], got {p!r}")
        for name in ("brightness", "contrast", "saturation", "hue"):
            self.factor_range(name)  # validates
        if not self.mean or len(self.mean) != len(self.std):
            raise ValueError(
                "ViewConfig.mean and ViewConfig.std need one value per channel, "
                f"got mean={self.mean!r}, std={self.std!r}"
            )
        if any(s <= 0 for s in self.std):
            raise ValueError(f"ViewConfig.std must be positive, got {self.std!r}")

    @property
    def channels(self) -> int:
        """Number of image channels this config expects (``len(mean)``)."""
        return len(self.mean)

    def factor_range(self, name: str) -> Range:
        """The ``(lo, hi)`` sampling range of a jitter op, torchvision ``ColorJitter`` semantics.

        Args:
            name: One of ``"brightness"``, ``"contrast"``, ``"saturation"``, ``"hue"``.

        Returns:
            Multiplicative factor range (shift range for hue); identity is ``(1, 1)`` (``(0, 0)``).
        """
        value = getattr(self, name)
        if name == "hue":
            if isinstance(value, tuple):
                lo, hi = _pair(name, value)
                if not -0.5 <= lo <= hi <= 0.5:
                    raise ValueError(f"ViewConfig.hue range must satisfy -0.5 <= lo <= hi <= 0.5, got {value!r}")
                return lo, hi
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 0.5:
                raise ValueError(f"ViewConfig.hue must be a float in [0, 0.5] or a (lo, hi) range, got {value!r}")
            return -float(value), float(value)
        if isinstance(value, tuple):
            lo, hi = _pair(name, value)
            if not 0 <= lo <= hi:
                raise ValueError(f"ViewConfig.{name} range must satisfy 0 <= lo <= hi, got {value!r}")
            return lo, hi
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"ViewConfig.{name} must be a float >= 0 or a (lo, hi) range, got {value!r}")
        return max(0.0, 1.0 - value), 1.0 + value


def _as_floats(name: str, value: object) -> tuple[float, ...]:
    """Coerce a list/tuple of numbers (e.g. from YAML) to a tuple of floats."""
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        raise ValueError(f"ViewConfig.{name} must be a sequence of numbers, got {value!r}")
    return tuple(float(v) for v in value)


def _pair(name: str, value: tuple[float, ...]) -> Range:
    if len(value) != 2:
        raise ValueError(f"ViewConfig.{name} must be a (min, max) pair, got {value!r}")
    return value[0], value[1]


def _view(images: Tensor, cfg: ViewConfig, u: Tensor, u_erase: Tensor | None = None) -> Tensor:
    """One augmented, normalised view of a batch in [0, 1], given its (B, _N_UNIFORMS) uniforms (and
    those of random erasing, drawn after every view's main draw when ``cfg.erase_p > 0``)."""
    B, C, H, W = images.shape
    boxes = _crop_boxes(u, H, W, cfg.crop_scale, cfg.crop_ratio)
    out = _resized_crop(images, boxes, u[:, _FLIP] < cfg.hflip, cfg.size)  # (B, C, S, S), ours to overwrite
    if cfg.jitter_p > 0:
        _color_jitter_(out, u[:, _JITTER] < cfg.jitter_p, u[:, _FACTORS], cfg)
    if cfg.grayscale_p > 0 and C == 3:
        torch.where(_per_sample(u[:, _GRAY] < cfg.grayscale_p), _grayscale(out), out, out=out)
    kernel_size = blur_kernel_size(cfg.size)
    if cfg.blur_p > 0 and kernel_size > 1:
        lo, hi = cfg.blur_sigma
        _random_blur_(out, u[:, _BLUR] < cfg.blur_p, lo + (hi - lo) * u[:, _SIGMA], kernel_size)
    if cfg.solarize_p > 0:
        _solarize_(out, u[:, _SOLARIZE] < cfg.solarize_p)
    out = _normalize(out, cfg.mean, cfg.std, inplace=True)
    if u_erase is not None:
        random_erase_(out, u_erase, cfg.erase_p, cfg.erase_scale, cfg.erase_ratio)
    return out


# On CPU the batch is processed in chunks of about this many bytes of float image, so that the
# intermediates stay in cache (about 1.4x faster at 96 px than one 256-image pass). Every op is
# per-sample and the uniforms are drawn for the whole batch first, so chunking never changes results.
_CPU_CHUNK_BYTES = 4 << 20


class Views(nn.Module):
    """Makes one augmented view per config from a batch of uint8 images, on the images' device.

    BYOL's asymmetric pair is two configs; multi-crop is several configs of different sizes.

    Args:
        configs: One :class:`ViewConfig` per view.

    Examples:
        >>> views = Views([ViewConfig(size=32, mean=(0.5,), std=(0.5,))] * 2)
        >>> a, b = views(torch.zeros(4, 1, 28, 28, dtype=torch.uint8))
        >>> a.shape
        torch.Size([4, 1, 32, 32])
    """

    def __init__(self, configs: Sequence[ViewConfig]) -> None:
        super().__init__()
        if isinstance(configs, ViewConfig) or not configs:
            raise ValueError(f"Views needs a non-empty list of ViewConfig, got {configs!r}")
        for cfg in configs:
            if not isinstance(cfg, ViewConfig):
                raise TypeError(f"Views expects ViewConfig items, got {type(cfg).__name__}: {cfg!r}")
        self.configs: tuple[ViewConfig, ...] = tuple(configs)

    @torch.no_grad()
    def forward(self, images: Tensor, generator: torch.Generator | None = None, rows: slice | None = None,
                total: int | None = None) -> list[Tensor]:
        """Augment a batch.

        Args:
            images: uint8 (B, C, H, W) on any device (float in [0, 1] is accepted too).
            generator: Optional RNG; the same seed gives identical views. If it lives on another
                device than the images, the (few) random numbers are drawn there and moved.
            rows, total: ``images`` are rows ``rows`` of a batch of ``total`` images (one process's
                share of a global batch under DDP): the random numbers are drawn for all ``total``
                and these rows used, so every image gets the view it would get in one process.

        Returns:
            One float32 (B, C, size, size) normalised tensor per config, on the images' device.
        """
        self._check(images)
        B, C, H, W = images.shape
        def draw() -> Tensor:  # (B, 32): this process's rows of the global batch's draw
            return _uniforms(B, images.device, generator) if total is None else \
                _uniforms(total, images.device, generator)[rows]

        draws = [draw() for _ in self.configs]
        if draws[0].shape[0] != B:
            raise ValueError(f"rows {rows} of a batch of {total} select {draws[0].shape[0]} images, got {B}")
        # erasing draws after all the main draws, so views without it keep the streams they always had
        erases = [draw() if cfg.erase_p > 0 else None for cfg in self.configs]
        chunk = self._chunk_size(images)
        if chunk >= B:
            x = _to_unit_float(images)
            return [_view(x, cfg, u, e) for cfg, u, e in zip(self.configs, draws, erases)]
        outs = [torch.empty(B, C, cfg.size, cfg.size, device=images.device) for cfg in self.configs]
        for start in range(0, B, chunk):
            part = slice(start, start + chunk)
            x = _to_unit_float(images[part])
            for out, cfg, u, e in zip(outs, self.configs, draws, erases):
                out[part] = _view(x, cfg, u[part], None if e is None else e[part])
        return outs

    def _chunk_size(self, images: Tensor) -> int:
        if images.device.type != "cpu":
            return images.shape[0]
        _, C, H, W = images.shape
        pixels = max([H * W] + [cfg.size**2 for cfg in self.configs])
        return max(1, _CPU_CHUNK_BYTES // (4 * C * pixels))

    @torch.no_grad()
    def eval_transform(self, images: Tensor, crop_fraction: float = 1.0) -> Tensor:
        """Deterministic evaluation transform (kNN / linear probe features), using the first config.

        Center-crops a square of side ``crop_fraction * min(H, W)``, resizes it to ``size`` with
        anti-aliased bilinear interpolation when the sides differ, and normalises. ImageNet's
        "resize 256, center-crop 224" is ``crop_fraction=0.875``.

        Args:
            images: uint8 (B, C, H, W).
            crop_fraction: Side of the center crop relative to the shorter image side, in (0, 1].

        Returns:
            float32 (B, C, size, size) normalised tensor on the images' device.
        """
        if not 0 < crop_fraction <= 1:
            raise ValueError(f"crop_fraction must lie in (0, 1], got {crop_fraction!r}")
        self._check(images)
        x = _to_unit_float(images)
        cfg = self.configs[0]
        _, _, H, W = x.shape
        side = max(1, int(round(crop_fraction * min(H, W))))
        top, left = (H - side) // 2, (W - side) // 2
        x = x[:, :, top : top + side, left : left + side]
        if side != cfg.size:
            x = F.interpolate(x, size=(cfg.size, cfg.size), mode="bilinear", align_corners=False, antialias=True)
            x = x.clamp_(0, 1)
        return _normalize(x, cfg.mean, cfg.std)

    def _check(self, images: Tensor) -> None:
        if not isinstance(images, Tensor) or images.dim() != 4:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"images must be a (B, C, H, W) tensor, got {shape}")
        if images.dtype != torch.uint8 and not images.is_floating_point():
            raise TypeError(f"images must be uint8 (or float in [0, 1]), got dtype {images.dtype}")
        for i, cfg in enumerate(self.configs):
            if cfg.channels != images.shape[1]:
                raise ValueError(
                    f"view {i} expects {cfg.channels} channels (len(mean)={cfg.channels}), "
                    f"got images of shape {tuple(images.shape)}"
                )

    def extra_repr(self) -> str:
        return "\n".join(f"({i}): {cfg}" for i, cfg in enumerate(self.configs))
