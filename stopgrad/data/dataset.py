"""The in-memory image dataset every loader returns, and the options every loader takes."""

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LoadOptions:
    """How a loader finds and reads its files (the ``data.*`` config keys of the same names).

    Attributes:
        root: Data root searched first (``data.root``), or None.
        download: Whether missing files may be downloaded (``data.download``).
        verify: Whether an archive must match the official md5 (``data.verify``); False accepts
            a re-pack with a warning.
        image_size: Output side in pixels, or None for the native size (``data.image_size``).
        label_set: CIFAR-100's ``"fine"`` (100 classes) or ``"coarse"`` (20) labels.
    """

    root: "str | os.PathLike[str] | None" = None
    download: bool = True
    verify: bool = True
    image_size: int | None = None
    label_set: str = "fine"


@dataclass
class ImageDataset:
    """A whole dataset split, resident in memory as uint8 tensors.

    Batches are drawn by indexing (``ds.images[idx]``) and augmented as tensors; there is
    no per-sample Python object.

    Attributes:
        images: uint8 ``(N, C, H, W)``, contiguous.
        labels: int64 ``(N,)``; -1 marks an unlabeled sample (STL-10 ``unlabeled``).
        classes: Class names; ``labels[i]`` indexes this list.
        name: Registry name of the dataset, e.g. ``"cifar10"``.
        split: Split it was loaded from, e.g. ``"train"`` ("" if built by hand).

    Examples:
        >>> ds = ImageDataset(torch.zeros(2, 1, 4, 4, dtype=torch.uint8),
        ...                   torch.tensor([0, -1]), ["a"], "toy")
        >>> len(ds), ds.num_classes
        (2, 1)
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    split: str = ""

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"ImageDataset {self.name!r}: images must be uint8 (N, C, H, W), got "
                f"{self.images.dtype} {tuple(self.images.shape)}; convert with "
                f"(x * 255).round().to(torch.uint8) and add a channel dim if needed."
            )
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"ImageDataset {self.name!r}: labels must be int64 of shape "
                f"({self.images.shape[0]},), got {self.labels.dtype} {tuple(self.labels.shape)}."
            )
        if len(self.labels) and (self.labels.min() < -1 or self.labels.max() >= len(self.classes)):
            raise ValueError(
                f"ImageDataset {self.name!r}: labels span [{int(self.labels.min())}, "
                f"{int(self.labels.max())}] but there are {len(self.classes)} classes; labels "
                f"must be in [0, {len(self.classes)}) or -1 for unlabeled."
            )
        self.images = self.images.contiguous()
        self.labels = self.labels.contiguous()

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(classes)``)."""
        return len(self.classes)


def resize_images(images: torch.Tensor, size: int, chunk: int = 2048) -> torch.Tensor:
    """Resizes uint8 ``(N, C, H, W)`` images to ``(N, C, size, size)``, antialiased bilinear.

    Works in chunks so memory stays near the size of the output.

    Args:
        images: uint8 ``(N, C, H, W)``.
        size: Output height and width.
        chunk: Images resized per step.

    Returns:
        uint8 ``(N, C, size, size)``.
    """
    n, c = images.shape[:2]
    out = torch.empty((n, c, size, size), dtype=torch.uint8)
    for start in range(0, n, chunk):
        x = images[start : start + chunk].float()  # (B, C, H, W)
        y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[start : start + chunk] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out
