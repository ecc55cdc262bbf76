"""A tiny deterministic toy dataset for smoke tests; no files involved."""

import torch
import torch.nn.functional as F

from stopgrad.data.dataset import ImageDataset, LoadOptions

NUM_CLASSES = 10
SPLIT_SIZES = {"train": 500, "test": 200}
DEFAULT_IMAGE_SIZE = 28
_SPLIT_SEEDS = {"train": 1, "test": 2}


def load_synthetic_rgb(split: str, options: LoadOptions = LoadOptions()) -> ImageDataset:
    """The same task in colour: ``(N, 3, S, S)``, S = 32 by default (CIFAR-sized, for tests and
    benchmarks of the RGB presets); channel c is the grayscale sample shifted by ``(c - 1) * 0.1``."""
    size = options.image_size or 32
    gray = load_synthetic(split, LoadOptions(image_size=size))
    x = gray.images.float() / 255  # (N, 1, S, S)
    rgb = torch.cat([(x + 0.1 * (c - 1)).clamp(0, 1) for c in range(3)], dim=1)
    return ImageDataset((rgb * 255).round_().to(torch.uint8), gray.labels, gray.classes, "synthetic-rgb", split)


def load_synthetic(split: str, options: LoadOptions = LoadOptions()) -> ImageDataset:
    """Random uint8 images ``(N, 1, S, S)`` (S = 28 by default), 10 balanced classes.

    Each class has a smooth random prototype (a 7x7 noise map upsampled to S x S, the same
    for every split); a sample is its class prototype plus pixel noise, so nearest-neighbour
    classification is well above chance (raw-pixel 1-NN: 81% on test vs 10% chance) while
    the task is not trivial. Identical on every call and machine (fixed CPU generators).
    train: 500 samples, test: 200.

    Args:
        split: ``"train"`` or ``"test"``.
        options: Only ``image_size`` is used: side S (default 28).
    """
    size = options.image_size or DEFAULT_IMAGE_SIZE
    coarse = torch.rand(NUM_CLASSES, 1, 7, 7, generator=torch.Generator().manual_seed(0))
    prototypes = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    g = torch.Generator().manual_seed(_SPLIT_SEEDS[split])
    n = SPLIT_SIZES[split]
    labels = (torch.arange(n) % NUM_CLASSES)[torch.randperm(n, generator=g)]  # (N,)
    noise = 0.45 * torch.randn(n, 1, size, size, generator=g)
    x = (0.55 * prototypes[labels] + 0.225 + noise).clamp_(0, 1)  # (N, 1, S, S)
    images = (x * 255).round_().to(torch.uint8)
    classes = [f"pattern-{i}" for i in range(NUM_CLASSES)]
    return ImageDataset(images, labels.to(torch.int64), classes, "synthetic", split)
