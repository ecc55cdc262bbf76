"""The named view recipes, each quoting the paper it comes from, and :func:`build_views`."""

from __future__ import annotations

import dataclasses


from stopgrad.augment.views import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    STL10_MEAN,
    STL10_STD,
    ViewConfig,
    Views,
)

def _byol_pair(size: int, mean: tuple[float, ...], std: tuple[float, ...], blur: bool) -> list[ViewConfig]:
    """BYOL's asymmetric pair (Grill et al., 2020, Appendix B, Table 6).

    Both views: crop area (0.08, 1), flip 0.5, jitter p=0.8 with brightness 0.4, contrast 0.4,
    saturation 0.2, hue 0.1, grayscale 0.2. View 1: blur p=1.0, solarize p=0.0. View 2: blur p=0.1,
    solarize p=0.2. Without ``blur`` (small images) both blur probabilities are 0.
    """
    base = ViewConfig(size=size, crop_scale=(0.08, 1.0), mean=mean, std=std)
    return [
        dataclasses.replace(base, blur_p=1.0 if blur else 0.0, solarize_p=0.0),
        dataclasses.replace(base, blur_p=0.1 if blur else 0.0, solarize_p=0.2),
    ]


def _simclr_view(size: int, mean: tuple[float, ...], std: tuple[float, ...], **kw: object) -> ViewConfig:
    """SimCLR colour distortion at strength s=0.5 (Chen et al., 2020, Appendix A).

    Jitter (brightness, contrast, saturation, hue) = (0.4, 0.4, 0.4, 0.1) with p=0.8, grayscale p=0.2.
    """
    return ViewConfig(size=size, saturation=0.4, hue=0.1, mean=mean, std=std, **kw)  # type: ignore[arg-type]


_FMNIST_STRONG = ViewConfig(
    size=28, crop_scale=(0.3, 1.0), jitter_p=0.8, brightness=0.8, contrast=0.8, saturation=0.0, hue=0.0,
    grayscale_p=0.0, blur_p=0.5, blur_sigma=(0.1, 1.0), mean=FASHION_MNIST_MEAN, std=FASHION_MNIST_STD,
)

PRESETS: dict[str, list[ViewConfig]] = {
    # Fashion-MNIST / MNIST at 28x28, 1 channel: gentle crops, flip, brightness/contrast only.
    # Normalised with Fashion-MNIST statistics (override mean/std for MNIST: (0.1307,), (0.3081,)).
    "28-gray": [
        ViewConfig(
            size=28, crop_scale=(0.3, 1.0), jitter_p=0.8, brightness=0.4, contrast=0.4,
            saturation=0.0, hue=0.0, grayscale_p=0.0, mean=FASHION_MNIST_MEAN, std=FASHION_MNIST_STD,
        )
    ],
    # Fashion-MNIST, stronger intensity jitter and a light blur: chosen on the held-out split of the
    # training set (benchmarks/fmnist_recipes.py; +0.010 held-out kNN over 28-gray at 4 epochs, 2 seeds).
    "28-gray-strong": [_FMNIST_STRONG],
    # Fashion-MNIST at 24x24: 28-gray-strong with the views (and test images) resized to 24 and
    # solarisation p 0.2. The step is about 1.25x as fast, and at the 20-minute budget it won the
    # pre-registered held-out comparison of benchmarks/fmnist_budget.py (README "Round 3").
    "24-gray-strong": [dataclasses.replace(_FMNIST_STRONG, size=24, solarize_p=0.2)],
    # CIFAR-10/100: SimSiam's CIFAR recipe (Chen & He, 2021) = SimCLR's with crop area (0.2, 1), no blur.
    "32": [_simclr_view(32, CIFAR10_MEAN, CIFAR10_STD, crop_scale=(0.2, 1.0))],
    # STL-10 at 96 px: SimCLR's recipe with blur p=0.5, sigma (0.1, 2), kernel 9 (10% of the side).
    "96": [_simclr_view(96, STL10_MEAN, STL10_STD, crop_scale=(0.08, 1.0), blur_p=0.5)],
    # ImageNet: BYOL's asymmetric pair (Table 6).
    "224": _byol_pair(224, IMAGENET_MEAN, IMAGENET_STD, blur=True),
    # BYOL's pair at CIFAR resolution, blur off (as in SimCLR's CIFAR setup), solarize 0.0 / 0.2.
    "32-byol": _byol_pair(32, CIFAR10_MEAN, CIFAR10_STD, blur=False),
    # BYOL's pair at STL-10 resolution, blur 1.0 / 0.1, solarize 0.0 / 0.2.
    "96-byol": _byol_pair(96, STL10_MEAN, STL10_STD, blur=True),
}


def build_views(preset: str, n_views: int = 2, local_views: int = 0, local_overrides: dict | None = None,
                **overrides: object) -> Views:
    """Build :class:`Views` from a named preset.

    View ``i`` uses the preset's config ``i % len(configs)``: a symmetric preset repeats its one
    config, an asymmetric (BYOL) preset alternates its two.

    Args:
        preset: A key of :data:`PRESETS`.
        n_views: Number of views to produce (>= 1).
        local_views: Multi-crop (Caron et al. 2020, Sec. 3.2): this many extra small crops after
            the ``n_views`` global ones, each the first config with ``size`` = 96/224 of the global
            size (at least 8) and ``crop_scale=(0.05, 0.14)``, then ``local_overrides``.
        local_overrides: ``ViewConfig`` fields of the local crops only.
        **overrides: ``ViewConfig`` fields replaced in every view, e.g. ``size=64, blur_p=0.5``.

    Returns:
        The configured :class:`Views`.

    Raises:
        ValueError: on an unknown preset, an unknown override field or ``n_views < 1``.

    Examples:
        >>> build_views("224")(torch.zeros(2, 3, 256, 256, dtype=torch.uint8))[1].shape
        torch.Size([2, 3, 224, 224])
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown augmentation preset {preset!r}; known: {sorted(PRESETS)}")
    if isinstance(n_views, bool) or not isinstance(n_views, int) or n_views < 1:
        raise ValueError(f"n_views must be a positive int, got {n_views!r}")
    if isinstance(local_views, bool) or not isinstance(local_views, int) or local_views < 0:
        raise ValueError(f"local_views must be an int >= 0, got {local_views!r}")
    fields = {f.name for f in dataclasses.fields(ViewConfig)}
    local_overrides = dict(local_overrides or {})
    unknown = sorted((set(overrides) | set(local_overrides)) - fields)
    if unknown:
        raise ValueError(f"unknown ViewConfig override(s) {unknown}; known fields: {sorted(fields)}")
    base = PRESETS[preset]
    configs = [dataclasses.replace(base[i % len(base)], **overrides) for i in range(n_views)]
    if local_views:
        first = configs[0]
        local = {"size": max(8, round(first.size * 96 / 224)), "crop_scale": (0.05, 0.14), **local_overrides}
        configs += [dataclasses.replace(first, **local) for _ in range(local_views)]
        if configs[-1].size >= first.size:  # the methods tell local crops from global views by size
            raise ValueError(f"local crops of size {configs[-1].size} are not smaller than the global views "
                             f"({first.size}); set a smaller size in data.local_overrides, or add global views "
                             f"with data.n_views instead")
    return Views(configs)
