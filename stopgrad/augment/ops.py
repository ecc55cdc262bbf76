"""The per-batch tensor operations of the view pipeline: crop boxes, resampling, colour jitter,
grayscale, blur, solarisation, normalisation, and the per-view uniform draw. Each is a handful of
batched ops with per-sample parameters, no Python loop over samples; each is tested against a
per-image reference in ``tests/test_augment.py``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from stopgrad.augment.views import ViewConfig

# ITU-R 601-2 luma weights, as in torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)

# Layout of the per-view uniform draw, shape (B, _N_UNIFORMS).
_CROP_TRIES = 10  # torchvision's RandomResizedCrop makes 10 attempts before the fallback
_AREA = slice(0, _CROP_TRIES)
_RATIO = slice(_CROP_TRIES, 2 * _CROP_TRIES)
_TOP, _LEFT, _FLIP, _JITTER = 20, 21, 22, 23
_FACTORS = slice(24, 28)  # brightness, contrast, saturation, hue
_GRAY, _BLUR, _SIGMA, _SOLARIZE = 28, 29, 30, 31
_N_UNIFORMS = 32

Range = tuple[float, float]


def blur_kernel_size(size: int) -> int:
    """Odd Gaussian kernel size of about 10% of the image side (SimCLR, Appendix A): 224 -> 23, 96 -> 9."""
    return 2 * (size // 20) + 1


# ---------------------------------------------------------------------------------------------
# Batched ops. Shapes: images (B, C, H, W) float in [0, 1]; per-sample parameters (B,).
# ---------------------------------------------------------------------------------------------


def _crop_boxes(u: Tensor, height: int, width: int, scale: Range, ratio: Range) -> Tensor:
    """Per-sample crop boxes with torchvision ``RandomResizedCrop.get_params`` semantics, vectorised.

    Each sample makes ``_CROP_TRIES`` attempts: area ``~ U(scale) * H * W``, aspect ratio
    log-uniform in ``ratio``, side lengths rounded; the first attempt that fits in the image wins,
    and samples with none fall back to torchvision's center crop (whole image, ratio clamped).

    Args:
        u: Uniforms in [0, 1), shape (B, _N_UNIFORMS); uses the area, ratio, top and left columns.
        height: Image height H.
        width: Image width W.
        scale: Area fraction range.
        ratio: Aspect ratio (w / h) range.

    Returns:
        Boxes ``(top, left, h, w)`` in integer pixels stored as float32, shape (B, 4).
    """
    u = u.float()
    h, w, found = _box_sizes(u, height, width, scale, ratio)

    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        fw, fh = int(round(height * ratio[1])), height
    else:
        fw, fh = width, height
    w = torch.where(found, w, torch.full_like(w, fw))
    h = torch.where(found, h, torch.full_like(h, fh))

    top = torch.floor(u[:, _TOP] * (height - h + 1)).clamp(max=height - h)
    left = torch.floor(u[:, _LEFT] * (width - w + 1)).clamp(max=width - w)
    top = torch.where(found, top, torch.floor((height - h) / 2))
    left = torch.where(found, left, torch.floor((width - w) / 2))
    return torch.stack([top, left, h, w], dim=1)


def _box_sizes(u: Tensor, height: int, width: int, scale: Range, ratio: Range,
               strict: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """``(h, w, found)`` of each sample's first of ``_CROP_TRIES`` box tries that fits, each (B,).

    A try has area ``~ U(scale) * H * W`` and log-uniform aspect ratio ``w / h`` in ``ratio``, sides
    rounded. It fits when ``0 < h <= H`` and ``0 < w <= W`` (``strict``: ``h < H`` and ``w < W``, as
    torchvision's ``RandomErasing``). Samples with no fitting try have ``found`` False and the sizes
    of their first try.
    """
    target = height * width * (scale[0] + (scale[1] - scale[0]) * u[:, _AREA])  # (B, T)
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u[:, _RATIO])  # (B, T)
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (h > 0) & ((w < width) & (h < height) if strict else (w <= width) & (h <= height))  # (B, T)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # first fitting try (0 if none)
    return h.gather(1, first).squeeze(1), w.gather(1, first).squeeze(1), fits.any(dim=1)


def _resized_crop(images: Tensor, boxes: Tensor, flip: Tensor, size: int) -> Tensor:
    """Crop each sample to its box, resize to ``size`` x ``size`` and mirror where ``flip``, in one grid_sample.

    With ``align_corners=False`` normalised coordinates span pixel edges, so the box
    ``[left, left + w) x [top, top + h)`` maps to centre ``(2 * left + w) / W - 1`` and half-width
    ``w / W``; a flip negates the x scale. Unlike torchvision's crop-then-resize, output pixels
    within half a pixel of the box edge interpolate with the real neighbouring pixels rather than
    clamping at the box edge; only the image border is clamped (``padding_mode="border"``).
    """
    B, C, H, W = images.shape
    top, left, h, w = boxes.unbind(1)
    sx = torch.where(flip, -w / W, w / W)
    sy = h / H
    cx = (2 * left + w) / W - 1
    cy = (2 * top + h) / H - 1
    zero = torch.zeros_like(sx)
    theta = torch.stack([sx, zero, cx, zero, sy, cy], dim=1).view(B, 2, 3)  # (B, 2, 3)
    grid = F.affine_grid(theta, [B, C, size, size], align_corners=False)  # (B, size, size, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _grayscale(images: Tensor) -> Tensor:
    """ITU-R 601-2 luma ``0.299 R + 0.587 G + 0.114 B``, shape (B, 1, H, W); identity for 1 channel."""
    if images.shape[1] == 1:
        return images
    r, g, b = images.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def _per_sample(values: Tensor) -> Tensor:
    return values.view(-1, 1, 1, 1)


# The ops below whose names end in ``_`` work in place on a tensor the pipeline owns (the output of
# grid_sample and what follows), like torch's own ``mul_``: every full-size temporary costs a large
# allocation, and on CPU these dominate (glibc hands big blocks back to the OS, so each new one
# page-faults). Samples that skip an op get its identity parameter (factor 1, blend weight 0),
# which leaves them bit for bit unchanged, instead of a masked copy.


def _brightness_(images: Tensor, factor: Tensor) -> Tensor:
    """torchvision ``adjust_brightness``, in place: ``clamp(f x, 0, 1)``."""
    return images.mul_(_per_sample(factor)).clamp_(0, 1)


def _contrast_(images: Tensor, factor: Tensor) -> Tensor:
    """torchvision ``adjust_contrast``, in place: ``clamp(f x + (1 - f) mean(gray(x)), 0, 1)``, mean per image."""
    f = _per_sample(factor)
    mean = _grayscale(images).mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return images.mul_(f).add_((1 - f) * mean).clamp_(0, 1)


def _saturation_(images: Tensor, factor: Tensor) -> Tensor:
    """torchvision ``adjust_saturation``, in place: ``clamp(f x + (1 - f) gray(x), 0, 1)``."""
    f = _per_sample(factor)
    bias = _grayscale(images) * (1 - f)  # (B, 1, H, W)
    return images.mul_(f).add_(bias).clamp_(0, 1)


def _hexcone_hue(images: Tensor, maxc: Tensor, chroma: Tensor) -> Tensor:
    """Hue of RGB pixels on the hexcone scale [0, 6) (Smith, 1978), as in torchvision's ``_rgb2hsv``.

    The per-pixel branch on which channel is the maximum is arithmetic on 0/1 masks: ``torch.where``
    with a per-pixel random mask is several times slower on CPU.
    Shapes: images (B, 3, H, W); maxc, chroma and the result (B, 1, H, W).
    """
    r, g, b = images.unbind(1)
    m = maxc.squeeze(1)
    is_r = (m == r).to(images.dtype)
    is_g = (m == g).to(images.dtype).mul_(1 - is_r)
    is_b = (1 - is_r).sub_(is_g)
    # chroma == 0 means r == g == b, where every numerator is 0: any positive divisor works.
    inv = chroma.squeeze(1).clamp_min(1e-12).reciprocal_()
    hue = (g - b).mul_(is_r).addcmul_(b - r, is_g).addcmul_(r - g, is_b).mul_(inv)
    hue.add_(is_g, alpha=2.0).add_(is_b, alpha=4.0)
    return torch.remainder(hue, 6.0).unsqueeze(1)


# Fully saturated colour of hexcone hue H: channel c is clamp(sign_c * |H - centre_c| + offset_c, 0, 1).
_HUE_CENTRE = (3.0, 2.0, 4.0)
_HUE_SIGN = (1.0, -1.0, -1.0)
_HUE_OFFSET = (-1.0, 2.0, 2.0)


def _adjust_hue(images: Tensor, shift: Tensor) -> Tensor:
    """torchvision ``adjust_hue``: rotate the HSV hue by ``shift`` turns, keeping saturation and value.

    HSV is never materialised: with ``max``, ``min``, chroma ``c = max - min`` and the rotated
    hexcone hue ``H``, the result is ``min + c * pure(H)``, where ``pure(H)`` is the fully saturated
    colour of hue H. This is the same map as torchvision's RGB -> HSV -> RGB round trip (up to
    float rounding, so a shift of 0 is not bit-exact). Returns a new tensor.
    """
    maxc = images.amax(dim=1, keepdim=True)  # (B, 1, H, W)
    minc = images.amin(dim=1, keepdim=True)
    chroma = maxc - minc
    hue = _hexcone_hue(images, maxc, chroma).add_(6.0 * _per_sample(shift))
    hue = torch.remainder(hue, 6.0)  # (B, 1, H, W)

    def const(values: tuple[float, ...]) -> Tensor:
        return torch.tensor(values, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)

    pure = (hue - const(_HUE_CENTRE)).abs_()  # (B, 3, H, W)
    pure.mul_(const(_HUE_SIGN)).add_(const(_HUE_OFFSET)).clamp_(0, 1)
    return pure.mul_(chroma).add_(minc)


def _color_jitter_(images: Tensor, apply: Tensor, u: Tensor, cfg: ViewConfig) -> Tensor:
    """Brightness, contrast, saturation, hue in this fixed order, on the samples where ``apply``; in place.

    Args:
        images: (B, C, H, W) in [0, 1]; overwritten.
        apply: (B,) bool, which samples are jittered.
        u: (B, 4) uniforms for the four factors.
        cfg: Jitter strengths.
    """
    names = ("brightness", "contrast", "saturation", "hue") if images.shape[1] == 3 else ("brightness", "contrast")
    ops = {"brightness": _brightness_, "contrast": _contrast_, "saturation": _saturation_}
    for col, name in enumerate(names):
        lo, hi = cfg.factor_range(name)
        identity = 0.0 if name == "hue" else 1.0
        if lo == hi == identity:
            continue
        factor = lo + (hi - lo) * u[:, col]  # (B,)
        if name == "hue":  # not bit-exact at shift 0, so mask instead
            torch.where(_per_sample(apply), _adjust_hue(images, factor), images, out=images)
        else:
            ops[name](images, torch.where(apply, factor, torch.full_like(factor, identity)))
    return images


def _reflect_pad(x: Tensor, pad: int, dim: int) -> Tensor:
    """Reflect padding (edge pixel not repeated) along one dim; a cat of flipped slices, cheaper than F.pad."""
    n = x.shape[dim]
    head = x.narrow(dim, 1, pad).flip(dim)
    tail = x.narrow(dim, n - 1 - pad, pad).flip(dim)
    return torch.cat([head, x, tail], dim=dim)


def _gaussian_blur(images: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Per-sample separable Gaussian blur, reflect padding, as one grouped conv per axis.

    The batch is folded into channels, ``(1, B * C, H, W)``, so each (sample, channel) pair gets its
    own 1-D kernel ``exp(-x^2 / (2 sigma^2))``, normalised to sum to 1 (SimCLR, Appendix A).

    Args:
        images: (B, C, H, W); H and W must exceed ``kernel_size // 2``.
        sigma: (B,) standard deviations in pixels.
        kernel_size: Odd kernel length.

    Returns:
        A new (B, C, H, W) tensor.
    """
    B, C, H, W = images.shape
    half = kernel_size // 2
    x = torch.arange(kernel_size, device=images.device, dtype=images.dtype) - half  # (k,)
    kernel = torch.exp(-(x**2) / (2 * sigma.view(B, 1) ** 2))  # (B, k)
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(C, dim=0)  # (B*C, k)
    folded = images.reshape(1, B * C, H, W)
    folded = F.conv2d(_reflect_pad(folded, half, 2), kernel.view(B * C, 1, kernel_size, 1), groups=B * C)
    folded = F.conv2d(_reflect_pad(folded, half, 3), kernel.view(B * C, 1, 1, kernel_size), groups=B * C)
    return folded.view(B, C, H, W)


def _random_blur_(images: Tensor, apply: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Blur the samples where ``apply``, in place.

    On CPU only the selected samples are convolved (BYOL's second view blurs 10% of them); on
    accelerators everything is blurred and masked, which avoids the host sync of ``nonzero``.
    """
    if images.device.type != "cpu":
        return torch.where(_per_sample(apply), _gaussian_blur(images, sigma, kernel_size), images, out=images)
    index = apply.nonzero().squeeze(1)
    if index.numel() == 0:
        return images
    return images.index_copy_(0, index, _gaussian_blur(images[index], sigma[index], kernel_size))


def _solarize_(images: Tensor, apply: Tensor | None = None) -> Tensor:
    """``x -> 1 - x`` where ``x >= 0.5`` (BYOL, Grill et al., 2020, Appendix B), on samples where ``apply``; in place.

    On [0, 1] this is ``min(x, 1 - x)``; unselected samples use ``min(x, 2 - x) = x`` instead.
    """
    top = torch.ones(images.shape[0], device=images.device, dtype=images.dtype)
    if apply is not None:
        top = torch.where(apply, top, 2.0 * top)
    return torch.minimum(images, _per_sample(top) - images, out=images)


def _normalize(images: Tensor, mean: tuple[float, ...], std: tuple[float, ...], inplace: bool = False) -> Tensor:
    m = torch.tensor(mean, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    if inplace:
        return images.sub_(m).div_(s)
    return (images - m) / s


def _to_unit_float(images: Tensor) -> Tensor:
    """uint8 -> float32 in [0, 1]; floating input is taken to be in [0, 1] already (not copied if float32)."""
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    return images.float()


def _uniforms(batch: int, device: torch.device, generator: torch.Generator | None) -> Tensor:
    """(B, _N_UNIFORMS) uniforms, drawn on the generator's device and moved to ``device``."""
    where = generator.device if generator is not None else device
    u = torch.rand(batch, _N_UNIFORMS, generator=generator, device=where)
    # Non-blocking only host -> device: a non-blocking copy to the host could be read too early.
    return u.to(device, non_blocking=torch.device(device).type != "cpu")
