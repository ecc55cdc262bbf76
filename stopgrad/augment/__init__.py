"""Batched, per-sample-random view augmentations on image tensors (CPU or CUDA).

A whole batch of ``uint8`` images ``(B, C, H, W)`` becomes one normalised float view per
:class:`ViewConfig`, with every random choice (crop box, flip, jitter factors, which samples get
blurred...) drawn independently per sample, and no Python loop over samples: each transform is a
handful of batched tensor ops, so the same code runs on whatever device the images live on.

Pipeline of one view, in this fixed order (the order of SimCLR, Chen et al., 2020, Appendix A, and
BYOL, Grill et al., 2020, Appendix B):

1. random resized crop + horizontal flip, fused into one ``F.affine_grid`` / ``F.grid_sample``
   (bilinear, ``align_corners=False``, border padding), with crop boxes sampled like torchvision's
   ``RandomResizedCrop``;
2. colour jitter with probability ``jitter_p``: brightness, contrast, saturation, hue, always in
   this order (torchvision's ``ColorJitter`` shuffles the order per call; we do not), each with
   torchvision's functional definition; hue is torchvision's HSV hue rotation (not a YIQ rotation);
3. grayscale (ITU-R 601-2 luma) with probability ``grayscale_p``, kept at C channels;
4. Gaussian blur with per-sample sigma, probability ``blur_p``;
5. solarisation with probability ``solarize_p``;
6. normalisation ``(x - mean) / std``.

All intermediate values are float32 in [0, 1]. Colour ops other than brightness and contrast are
skipped for 1-channel images.

Randomness: each view draws one ``(B, 32)`` tensor of uniforms from ``generator`` (or the global
RNG), on the generator's device, so the same seed gives identical views, and the same random
choices on any device. The column layout is fixed whatever the config, so switching an op off does
not shift the other draws.

Speed: ops work in place on the pipeline's own tensors, per-pixel branches are arithmetic rather
than ``torch.where``, and on CPU the batch is processed in cache-sized chunks (see
``benchmarks/bench_augment.py``). Views are computed under ``torch.no_grad()``.

Known difference from torchvision: the crop is resampled with plain bilinear interpolation, without
the anti-aliasing torchvision's tensor ``Resize`` applies when a large crop is shrunk.

Examples:
    >>> views = build_views("32")
    >>> images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    >>> v1, v2 = views(images, generator=torch.Generator().manual_seed(0))
    >>> v1.shape, v1.dtype
    (torch.Size([8, 3, 32, 32]), torch.float32)
"""

from stopgrad.augment.ops import blur_kernel_size
from stopgrad.augment.presets import PRESETS, build_views
from stopgrad.augment.views import ViewConfig, Views

__all__ = ["PRESETS", "ViewConfig", "Views", "blur_kernel_size", "build_views"]
