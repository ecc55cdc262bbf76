"""MNIST and Fashion-MNIST from the official gzipped IDX files."""

import numpy as np
import torch

from stopgrad.data.dataset import ImageDataset, LoadOptions
from stopgrad.data.errors import corrupt
from stopgrad.data.idx import read_idx
from stopgrad.data.locate import locate_files

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


def idx_file_names(split: str) -> list[tuple[str, str]]:
    """Accepted names of the (images, labels) files of a split, gzipped name first."""
    prefix = {"train": "train", "test": "t10k"}[split]
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    return [(f"{s}.gz", s) for s in stems]


def load_idx_dataset(name: str, classes: list[str], split: str, options: LoadOptions) -> ImageDataset:
    """Loads an MNIST-style split: images ``(N, 1, 28, 28)``, labels 0..9.

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"`` (key of `SOURCES`).
        classes: Class names.
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        options: ``root`` and ``download`` are used.

    Raises:
        DatasetNotFoundError: Files not found (the message lists every place searched).
        CorruptDatasetError: A file does not follow the IDX format or the two disagree.
    """
    images_path, labels_path = locate_files(name, idx_file_names(split), options.root, options.download)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise corrupt(images_path, f"expected uint8 images (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise corrupt(labels_path, f"expected uint8 labels (N,), got {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise corrupt(labels_path, f"has {len(labels)} labels but {images_path} has {len(images)} images")
    if len(labels) and labels.max() >= len(classes):
        raise corrupt(labels_path, f"label {labels.max()} is out of range 0..{len(classes) - 1}")
    return ImageDataset(
        images=torch.from_numpy(images).unsqueeze(1),  # (N, 1, H, W)
        labels=torch.from_numpy(labels.astype(np.int64)),
        classes=list(classes),
        name=name,
        split=split,
    )


def load_mnist(split: str, options: LoadOptions) -> ImageDataset:
    """MNIST handwritten digits (LeCun et al. 1998). See `load_idx_dataset`."""
    return load_idx_dataset("mnist", MNIST_CLASSES, split, options)


def load_fashion_mnist(split: str, options: LoadOptions) -> ImageDataset:
    """Fashion-MNIST (Xiao et al. 2017, arXiv:1708.07747). See `load_idx_dataset`."""
    return load_idx_dataset("fashion-mnist", FASHION_MNIST_CLASSES, split, options)
