"""Random erasing (Zhong et al., "Random Erasing Data Augmentation", AAAI 2020), batched.

Each selected sample gets one rectangle of area ``~ U(scale) * H * W`` and log-uniform aspect ratio
set to ``value`` (0 after normalisation: the dataset mean, as torchvision's ``RandomErasing`` placed
after ``Normalize``). As there, a sample makes 10 tries and the first with ``h < H`` and ``w < W``
wins; a sample none of whose tries fits is left as it is (the paper's Algorithm 1).
"""

from __future__ import annotations

import torch
from torch import Tensor

from stopgrad.augment.ops import _FLIP, _LEFT, _TOP, Range, _box_sizes

_APPLY = _FLIP  # the erase draw is its own (B, 32) block: its flip column decides whether to erase


def random_erase_(images: Tensor, u: Tensor, p: float, scale: Range, ratio: Range, value: float = 0.0) -> Tensor:
    """Erase one random rectangle per sample with probability ``p``, in place.

    Args:
        images: (B, C, H, W) float, normalised.
        u: (B, 32) uniforms of this view's erase draw (area, ratio, top, left and apply columns).
        p: Probability that a sample is erased.
        scale: Range of the erased area as a fraction of the image area, ``0 < lo <= hi < 1``.
        ratio: Range of the rectangle's aspect ratio (width / height), sampled log-uniformly.
        value: What the rectangle is set to.

    Returns:
        ``images``, with the rectangles erased.
    """
    B, _, H, W = images.shape
    u = u.float()
    h, w, fits = _box_sizes(u, H, W, scale, ratio, strict=True)  # (B,) each
    top = torch.floor(u[:, _TOP] * (H - h + 1)).clamp(max=H - h)  # uniform over the valid offsets
    left = torch.floor(u[:, _LEFT] * (W - w + 1)).clamp(max=W - w)
    apply = (u[:, _APPLY] < p) & fits  # no fitting try: nothing is erased
    rows = torch.arange(H, device=images.device, dtype=top.dtype).view(1, H, 1)
    cols = torch.arange(W, device=images.device, dtype=top.dtype).view(1, 1, W)
    inside = ((rows >= top.view(B, 1, 1)) & (rows < (top + h).view(B, 1, 1))
              & (cols >= left.view(B, 1, 1)) & (cols < (left + w).view(B, 1, 1)))  # (B, H, W)
    mask = (inside & apply.view(B, 1, 1)).unsqueeze(1)  # (B, 1, H, W)
    return images.masked_fill_(mask, value)
